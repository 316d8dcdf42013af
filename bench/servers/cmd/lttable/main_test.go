package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplice(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "RESULTS.md")

	// Absent file: just the section.
	if err := spliceFile(p, []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	want := beginMarker + "\none\n" + endMarker + "\n"
	if got, _ := os.ReadFile(p); string(got) != want {
		t.Fatalf("new file:\n%q\nwant\n%q", got, want)
	}

	// A file without markers gets them at the end; its text stays.
	if err := os.WriteFile(p, []byte("# Results\n\nencoder table"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := spliceFile(p, []byte("two")); err != nil {
		t.Fatal(err)
	}
	want = "# Results\n\nencoder table\n\n" + beginMarker + "\ntwo\n" + endMarker + "\n"
	if got, _ := os.ReadFile(p); string(got) != want {
		t.Fatalf("appended:\n%q\nwant\n%q", got, want)
	}

	// Markers present: only what lies between them changes.
	if err := os.WriteFile(p, []byte("above\n"+beginMarker+"\nold\n"+endMarker+"\nbelow\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := spliceFile(p, []byte("three\n\n")); err != nil {
		t.Fatal(err)
	}
	want = "above\n" + beginMarker + "\nthree\n" + endMarker + "\nbelow\n"
	if got, _ := os.ReadFile(p); string(got) != want {
		t.Fatalf("replaced:\n%q\nwant\n%q", got, want)
	}

	if err := os.WriteFile(p, []byte(beginMarker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := spliceFile(p, []byte("x")); err == nil {
		t.Fatal("a lone marker was accepted")
	}
}

func TestTables(t *testing.T) {
	dir := t.TempDir()
	write := func(name, js string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("idle-100-stream.json", `{"conns":100,"open_at_end":100,"failed":0,"server_rss_before_bytes":1048576,"server_rss_open_bytes":3145728,"server_rss_per_conn_bytes":20480}`)
	write("fanout-10-stream.load", "0.50 1.25\n")
	write("fanout-10-stream.json", `{"conns":100,"open_at_end":100,"deliveries_per_s":1000,"latency_ms":{"p50":1,"p99":2,"max":3}}`)
	write("fanout-10-rawstream.json", `{"conns":100,"open_at_end":100,"deliveries_per_s":1000,"latency_ms":{"p50":1,"p99":2,"max":3}}`)
	write("fanout-10-gosse.json", `{"conns":100,"open_at_end":100,"deliveries_per_s":400,"latency_ms":{"p50":1,"p99":5,"max":9},"failed":2,"failed_by":{"refused":2},"warnings":["CLIENT CPU SATURATED"]}`)
	var out bytes.Buffer
	if err := run([]string{"-dir", dir, "-servers", "stream,rawstream,gosse", "-idle", "100", "-rates", "10"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"| fastsse stream | 100 | 100 | 0 | 1.0 → 3.0 | 20.00 |",
		"| fastsse stream | 10 | 100 | 1000 | 1000 | 1.000 | 2.000 | 3.000 | 0 | 0 | 0 | 0.00 | 0.00 | 0 | 0.50 → 1.25 |",
		"| 10 | fastsse stream | 1.000 | 1.000 | met |",
		"| 10 | fastsse stream | 400 (gosse) | 2.50× | 5.000 (gosse) | 0.400 | met |",
		"| tmaxmax/go-sse (net/http) | 100 | no result |",
		"fanout-10-gosse: CLIENT CPU SATURATED",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
