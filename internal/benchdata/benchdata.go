// Package benchdata holds the payloads that the encoder benchmarks of every
// module measure, so that fastsse's own figures and the peer comparison are
// taken on the same bytes.
package benchdata

import (
	"strconv"
	"strings"
)

var (
	// SmallData is a 60-byte JSON quote; with its id and type the event
	// is about 100 bytes on the wire.
	SmallData = `{"sym":"ACME","px":101.25,"qty":30,"ts":1700000000123,"x":1}`
	// JSON1K is a 1 KiB JSON document without line breaks.
	JSON1K = makeJSON1K()
	// Lines10 is ten lines of text separated by LF.
	Lines10 = makeLines10()
)

func makeJSON1K() string {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; ; i++ {
		item := `{"id":` + strconv.Itoa(1000+i) + `,"name":"item-` + strconv.Itoa(i) + `","ok":true}`
		if b.Len()+len(item)+3 > 1024 {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(item)
	}
	b.WriteString(strings.Repeat(" ", 1024-2-b.Len())) // pad to exactly 1 KiB
	b.WriteString(`]}`)
	return b.String()
}

func makeLines10() string {
	lines := make([]string, 10)
	for i := range lines {
		lines[i] = "line " + strconv.Itoa(i) + ": the quick brown fox jumps over the lazy dog"
	}
	return strings.Join(lines, "\n")
}
