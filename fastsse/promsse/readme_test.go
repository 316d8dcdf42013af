package promsse_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/lasse-go/lasse/fastsse/promsse"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestREADMENames: every lasse_ metric the top README's operations section
// and this package's doc name is one the Collector exports (a histogram's series
// with their _bucket, _sum and _count suffixes), and every exported one is
// in the package doc.
func TestREADMENames(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(promsse.New(&promsse.Options{Bus: true})))
	fams, err := reg.Gather()
	require.NoError(t, err)
	exported := map[string]bool{}
	for _, f := range fams {
		exported[f.GetName()] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				exported[f.GetName()+s] = true
			}
		}
	}
	name := regexp.MustCompile(`lasse_[a-z_]+[a-z]`)
	for _, file := range []string{"../../README.md", "promsse.go"} {
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		text := string(b)
		if strings.HasSuffix(file, "README.md") { // its operations section
			_, text, _ = strings.Cut(text, "\n## Operations")
			text, _, _ = strings.Cut(text, "\n## ")
		}
		found := name.FindAllString(text, -1)
		require.NotEmpty(t, found, file)
		for _, n := range found {
			assert.True(t, exported[n], "%s names %s, which the Collector does not export", file, n)
		}
	}
	doc, err := os.ReadFile("promsse.go")
	require.NoError(t, err)
	for _, f := range fams {
		listed := strings.Contains(string(doc), "//\t"+f.GetName()+" ") || strings.Contains(string(doc), "//\t"+f.GetName()+"{")
		assert.True(t, listed, "the package doc lists %s", f.GetName())
	}
}
