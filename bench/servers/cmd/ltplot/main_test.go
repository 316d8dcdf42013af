package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// svgTexts parses an SVG file as XML and returns its text elements.
func svgTexts(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	var texts []string
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return texts
		}
		if err != nil {
			t.Fatalf("%s: not XML: %v", path, err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			inText = tk.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, strings.TrimSpace(string(tk)))
			}
		case xml.EndElement:
			inText = false
		}
	}
}

func TestCharts(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	write := func(name, js string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fanout-100-1-stream.json", `{"conns":100,"open_at_end":100,"deliveries_per_s":100,"latency_ms":{"p99":2}}`)
	write("fanout-100-10-stream.json", `{"conns":100,"open_at_end":100,"deliveries_per_s":990,"latency_ms":{"p99":3}}`)
	write("fanout-100-10-gosse.json", `{"conns":100,"open_at_end":100,"deliveries_per_s":400,"latency_ms":{"p99":50}}`)
	write("fanout-100-10-gosse.load", "0.5 1.0\n")
	var md bytes.Buffer
	if err := run([]string{"-dir", dir, "-out", out, "-link", "charts", "-servers", "stream,gosse", "-rates", "1,10", "-idle", "100", "-conns", "100"}, &md); err != nil {
		t.Fatal(err)
	}
	want := "![deliveries/s against the rate, per server](charts/fanout-deliveries.svg)\n" +
		"![p99 latency against the rate, per server](charts/fanout-p99.svg)\n\n"
	if md.String() != want {
		t.Errorf("markdown:\n%q\nwant\n%q", md.String(), want)
	}
	if _, err := os.Stat(filepath.Join(out, "idle-kb.svg")); !os.IsNotExist(err) {
		t.Errorf("idle-kb.svg drawn without idle reports (stat: %v)", err)
	}
	for _, name := range []string{"fanout-deliveries.svg", "fanout-p99.svg"} {
		texts := strings.Join(svgTexts(t, filepath.Join(out, name)), "|")
		for _, w := range []string{"fastsse stream", "tmaxmax/go-sse (net/http)", "events/s published to every connection"} {
			if !strings.Contains(texts, w) {
				t.Errorf("%s lacks the text %q: %s", name, w, texts)
			}
		}
	}
	if texts := strings.Join(svgTexts(t, filepath.Join(out, "fanout-deliveries.svg")), "|"); !strings.Contains(texts, "offered (open × rate)") {
		t.Errorf("deliveries chart lacks the offered load: %s", texts)
	}

	// With idle reports, the idle chart too.
	write("idle-100-stream.json", `{"conns":100,"open_at_end":100,"server_rss_per_conn_bytes":20480}`)
	md.Reset()
	if err := run([]string{"-dir", dir, "-out", out, "-servers", "stream,gosse", "-rates", "1,10", "-idle", "100", "-conns", "100"}, &md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "(charts/idle-kb.svg)") {
		t.Errorf("no idle chart: %s", md.String())
	}
	texts := strings.Join(svgTexts(t, filepath.Join(out, "idle-kb.svg")), "|")
	for _, w := range []string{"100 connections", "fastsse stream", "server RSS per idle connection (KB)"} {
		if !strings.Contains(texts, w) {
			t.Errorf("idle-kb.svg lacks %q: %s", w, texts)
		}
	}

	if err := run([]string{"-dir", t.TempDir(), "-out", out}, io.Discard); err == nil {
		t.Error("an empty directory drew charts")
	}

	// One rate (LOADTEST_RATES=1): no chart against the rate (a log axis
	// of one point, which the plotting library could not draw), the idle
	// chart still.
	md.Reset()
	if err := run([]string{"-dir", dir, "-out", out, "-servers", "stream,gosse", "-rates", "1", "-idle", "100", "-conns", "100"}, &md); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(md.String(), "fanout") || !strings.Contains(md.String(), "idle-kb.svg") {
		t.Errorf("one rate: %s", md.String())
	}
}
