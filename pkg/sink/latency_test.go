package sink

import (
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/fragment"
)

func TestLatencyPercentiles(t *testing.T) {
	var l latencyLog
	if p50, p99 := l.percentiles(); p50 != 0 || p99 != 0 {
		t.Fatalf("empty log: %v %v", p50, p99)
	}
	for i := 100; i >= 1; i-- { // 1..100 ms, in reverse
		l.add(time.Duration(i) * time.Millisecond)
	}
	if p50, p99 := l.percentiles(); p50 != 50*time.Millisecond || p99 != 99*time.Millisecond {
		t.Fatalf("1..100 ms: p50 %v p99 %v, want 50ms 99ms", p50, p99)
	}
	// Only the latest latencySamples count: older, larger values drop out.
	for range latencySamples {
		l.add(time.Millisecond)
	}
	if p50, p99 := l.percentiles(); p50 != time.Millisecond || p99 != time.Millisecond {
		t.Fatalf("after %d samples of 1 ms: p50 %v p99 %v", latencySamples, p50, p99)
	}
}

// Frames are counted when their last byte is written, once.
func TestLatencyMarks(t *testing.T) {
	s := &Sink{}
	t0 := time.Unix(1000, 0)
	e := &entry{frag: &fragment.Fragment{Data: make([]byte, 300)}}
	e.marks = []frameMark{{end: 100, at: t0}, {end: 200, at: t0.Add(10 * time.Millisecond)}, {end: 300, at: t0.Add(20 * time.Millisecond)}}
	s.writtenLocked(e, 150, t0.Add(30*time.Millisecond)) // the first frame only
	if s.latency.n != 1 || s.latency.ring[0] != 30*time.Millisecond {
		t.Fatalf("after 150 bytes: %d samples, first %v", s.latency.n, s.latency.ring[0])
	}
	e.frag.Closed = true
	s.writtenLocked(e, 300, t0.Add(40*time.Millisecond))
	if s.latency.n != 3 || s.latency.ring[1] != 30*time.Millisecond || s.latency.ring[2] != 20*time.Millisecond {
		t.Fatalf("after 300 bytes: %d samples %v", s.latency.n, s.latency.ring[:3])
	}
	if e.marks != nil {
		t.Fatalf("a closed, fully written fragment keeps its marks: a replay would count them again")
	}
	s.writtenLocked(e, 300, t0.Add(time.Second)) // a replay
	if s.latency.n != 3 {
		t.Fatalf("a replay was counted: %d samples", s.latency.n)
	}
}
