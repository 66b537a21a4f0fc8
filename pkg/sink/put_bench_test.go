package sink

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkPutSteady is the Put path in steady state, one frame per op:
// AAC frames of 1000 bytes into 1 s fragments, each fragment written and
// acknowledged (as the writer and the ack reader would) once the next one
// starts. The path from a frame to the store allocates nothing then: the
// fragment buffers and the latency marks are recycled.
func BenchmarkPutSteady(b *testing.B) {
	s, _, fc := storeSinkClock(b, Realtime, 1<<30, time.Hour)
	ctx := context.Background()
	f := aacFrame(0)
	i := 0
	put := func() {
		fc.Advance(100 * time.Millisecond)
		f.PTS = time.Duration(i) * 100 * time.Millisecond
		i++
		if err := s.Put(ctx, f); err != nil {
			b.Fatal(err)
		}
		s.mu.Lock()
		if len(s.entries) > 1 {
			now := s.cfg.Clock.Now()
			for _, e := range s.entries[:len(s.entries)-1] {
				s.writtenLocked(e, len(e.frag.Data), now)
				e.sent, e.state = true, statePersisted
			}
			s.trimLocked()
		}
		s.mu.Unlock()
	}
	for range 200 {
		put()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		put()
	}
}

// The steady-state Put path allocates nothing per frame: what it allocates
// per fragment (the fragment's records in the store) is at most
// perFragment, frames not counted.
func TestPutSteadyAllocatesNothingPerFrame(t *testing.T) {
	const framesPerFragment, perFragment = 10, 4
	r := testing.Benchmark(BenchmarkPutSteady)
	frags := float64(r.N) / framesPerFragment
	if a := float64(r.MemAllocs) / frags; a > perFragment {
		t.Fatalf("%.1f allocations per fragment of %d frames in steady state (%.0f bytes), want at most %d", a, framesPerFragment, float64(r.MemBytes)/frags, perFragment)
	}
}

// An event below the logger's level is not formatted: emitting it
// allocates nothing (acknowledgements and metrics are emitted all along).
func TestEmitFormatsOnlyWhatIsLogged(t *testing.T) {
	s, err := New(Config{StreamName: "s", Endpoint: "http://127.0.0.1:1", Region: "us-west-2", Credentials: nopCreds{},
		Logger: slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	e := Event{Kind: EventMetrics, At: time.Unix(1_800_000_000, 0), Message: "m"}
	if a := testing.AllocsPerRun(100, func() { s.emit(e) }); a != 0 {
		t.Fatalf("%.0f allocations per debug event with the logger at INFO, want 0", a)
	}
}
