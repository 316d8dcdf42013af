package feed

import (
	"context"
	"testing"
	"time"
)

func TestAppendPayload(t *testing.T) {
	for _, tc := range []struct {
		nanos int64
		size  int
		want  string
	}{
		{1700000000000000000, 24, "1700000000000000000 xxxx"},
		{1700000000000000000, 0, "1700000000000000000 "},
		{42, 5, "42 xx"},
	} {
		if got := string(AppendPayload([]byte("p:"), tc.nanos, tc.size)); got != "p:"+tc.want {
			t.Errorf("AppendPayload(%d, %d) = %q, want %q", tc.nanos, tc.size, got, "p:"+tc.want)
		}
	}
}

func TestEveryOff(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(context.Background(), 0, func() { t.Error("called at rate 0") })
		EveryInterval(context.Background(), -time.Second, func() { t.Error("called at a negative interval") })
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Every with rate 0 did not return")
	}
}
