package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	loadBuild    sync.Once
	loadBuildErr error
)

// buildFeedAndBench builds examples/feed (with -race when the test runs
// under it) and loadtest/sse-bench (without: it is the load) into bin.
func buildFeedAndBench(t *testing.T) {
	t.Helper()
	loadBuild.Do(func() {
		feed := []string{"build", "-o", filepath.Join(bin, "feed")}
		if raceBuild {
			feed = append(feed, "-race")
		}
		for _, args := range [][]string{
			append(feed, "github.com/lasse-go/lasse/examples/feed"),
			{"build", "-o", filepath.Join(bin, "sse-bench"), "github.com/lasse-go/lasse/loadtest/sse-bench"},
		} {
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				loadBuildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
	})
	if loadBuildErr != nil {
		t.Fatal(loadBuildErr)
	}
}

// dashState describes the dashboard page for failure messages.
const dashState = `JSON.stringify({dash: document.getElementById('dash').textContent, dashboard: window.dashboard,
	open: document.querySelector('#plot-open polyline') && document.querySelector('#plot-open polyline').getAttribute('points')})`

// TestFeedDashboardInBrowser: the feed's page plots the server's own stats
// stream, and its plots follow a load: sse-bench opens 500 streams for
// 10 s, and the plot of open streams rises to them, the events/s plot shows
// them served, one sample a second, and both come down when it ends.
func TestFeedDashboardInBrowser(t *testing.T) {
	buildFeedAndBench(t)
	srv := startExample(t, "feed", "-rate", "10", "-drain-spread", "1s")
	b := newBrowser(t)
	b.navigate(t, srv.base+"/")
	b.waitFor(t, "two samples on the dashboard", `window.dashboard.received >= 2`, dashState)
	idle := b.points(t, "open")

	out := &lockedBuffer{}
	bench := exec.Command(filepath.Join(bin, "sse-bench"), "-url", srv.base+"/feed", "-c", "500", "-d", "10s")
	bench.Stdout, bench.Stderr = out, out
	if err := bench.Start(); err != nil {
		t.Fatalf("start sse-bench: %v", err)
	}
	var benchErr error
	benchDone := make(chan struct{})
	go func() { benchErr = bench.Wait(); close(benchDone) }()
	t.Cleanup(func() {
		select {
		case <-benchDone:
		default:
			bench.Process.Kill()
			<-benchDone
		}
	})

	b.waitFor(t, "the open streams plot to reach the load", `window.dashboard.last.open >= 500`, dashState)
	var n int
	b.evalJSON(t, `JSON.stringify(window.dashboard.received)`, &n)
	b.waitFor(t, "three more samples under load", fmt.Sprintf(`window.dashboard.received >= %d`, n+3), dashState)
	loaded := b.points(t, "open")
	if loaded == idle || strings.Count(loaded, ",") < 3 {
		t.Errorf("the open streams plot did not change under load:\nidle   %q\nloaded %q", idle, loaded)
	}
	var shown struct {
		Label string
		Last  int
	}
	b.evalJSON(t, `JSON.stringify({Label: document.getElementById('now-open').textContent, Last: window.dashboard.last.open})`, &shown)
	if shown.Last < 500 || shown.Label != strconv.Itoa(shown.Last) {
		t.Errorf("open streams shown under load: %q, last sample %d, want the sample and at least 500", shown.Label, shown.Last)
	}
	b.waitFor(t, "the events/s plot to show the load served (10 events/s to 500 streams)",
		`window.dashboard.last.events >= 500`, dashState)
	if pts := b.points(t, "events"); strings.Count(pts, ",") < 3 {
		t.Errorf("events/s plot: %q", pts)
	}

	select {
	case <-benchDone:
		if benchErr != nil {
			t.Fatalf("sse-bench: %v\n%s", benchErr, out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("sse-bench still running after 60 s\n%s", out)
	}
	t.Logf("sse-bench:\n%s", out)
	b.waitFor(t, "the open streams plot to come down after the load", `window.dashboard.last.open <= 5`, dashState)
	srv.stop(t)
}

// points returns the polyline of the dashboard's plot of key.
func (b *browser) points(t *testing.T, key string) string {
	t.Helper()
	var s string
	b.evalJSON(t, fmt.Sprintf(`JSON.stringify(document.querySelector('#plot-%s polyline').getAttribute('points'))`, key), &s)
	return s
}
