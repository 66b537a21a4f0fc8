package core

import (
	"context"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// Offline input faster than real time, against an endpoint whose
// acknowledgements lag: with the offline window the store's memory stays
// within the window and two fragments (the open one and the one that
// crossed it), and every frame is stored once; without it (the control)
// the store grows with the lag far beyond that.
func TestOfflineWindowBoundsMemory(t *testing.T) {
	// 40 one-second fragments at their own timestamps: the window applies
	// once the stream runs 2 s ahead of the wall clock.
	cpd, one := officialFrames(t)
	span := one[len(one)-1].pts + 33*time.Millisecond
	var frames []frame
	for r := range 4 {
		for _, f := range one {
			frames = append(frames, frame{f.pts + time.Duration(r)*span, f.key, f.data})
		}
	}
	var gop, largest int64
	for i, f := range frames {
		if f.key && i > 0 {
			largest, gop = max(largest, gop), 0
		}
		gop += int64(len(f.data)) + 16
	}
	largest = max(largest, gop)
	window := 3 * largest
	bound := window + 2*largest + largest/4 // block headers, tags, the key frame that opened the next
	for _, c := range []struct {
		name   string
		window int64
	}{{"window", window}, {"control", -1}} {
		t.Run(c.name, func(t *testing.T) {
			fe := newFaultEndpoint(t, kvslocal.Faults{AckDelay: 30 * time.Millisecond})
			ev := &events{}
			cfg := faultConfig(fe.url, "window-"+c.name, ev)
			cfg.StreamingType = sink.Offline
			cfg.OfflineWindow = c.window
			s := startSink(t, cfg, cpd)
			var peak int64
			for _, f := range frames {
				if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
					t.Fatal(err)
				}
				peak = max(peak, s.Metrics().StoreMemory)
			}
			if err := s.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
			sum := summarise(t, fe.server(), cfg.StreamName)
			if sum.frames != len(frames) || sum.dups != 0 {
				t.Fatalf("stored %d frames (%d duplicates), want %d", sum.frames, sum.dups, len(frames))
			}
			t.Logf("peak store memory %d bytes; window %d, bound %d", peak, window, bound)
			if c.window > 0 && peak > bound {
				t.Fatalf("the store held %d bytes in memory, over the %d-byte window plus two fragments (%d)", peak, window, bound)
			}
			if c.window < 0 && peak <= bound {
				t.Fatalf("without the window the store held only %d bytes: the acknowledgements did not lag, the test proves nothing", peak)
			}
		})
	}
}
