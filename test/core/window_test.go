package core

import (
	"context"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// windowFrames is 40 one-second fragments of the official producer's
// frames at their own timestamps (the offline window applies once the
// stream runs 2 s ahead of the wall clock), and the largest fragment's
// bytes as the store counts them.
func windowFrames(t *testing.T) ([]byte, []frame, int64) {
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
	return cpd, frames, max(largest, gop)
}

// streamWindow streams frames offline with the given initial window against
// an endpoint whose acknowledgements each come delay late, checks that
// every frame is stored once, and returns the largest StoreMemory seen
// after a Put and the window at the end.
func streamWindow(t *testing.T, name string, window int64, delay time.Duration) (peak, final int64) {
	cpd, frames, largest := windowFrames(t)
	fe := newFaultEndpoint(t, kvslocal.Faults{AckDelay: delay})
	ev := &events{}
	cfg := faultConfig(fe.url, name, ev)
	cfg.StreamingType = sink.Offline
	cfg.OfflineWindow = window
	s := startSink(t, cfg, cpd)
	for _, f := range frames {
		if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
			t.Fatal(err)
		}
		m := s.Metrics()
		peak = max(peak, m.StoreMemory)
		// The window (as it is now) bounds memory: the closed fragments within it, the
		// one that crossed it and the open one.
		if window > 0 && m.StoreMemory > m.StoreWindow+2*largest+largest/4 {
			t.Fatalf("the store held %d bytes in memory, over the %d-byte window plus two fragments", m.StoreMemory, m.StoreWindow)
		}
	}
	final = s.Metrics().StoreWindow
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := summarise(t, fe.server(), cfg.StreamName)
	if sum.frames != len(frames) || sum.dups != 0 {
		t.Fatalf("stored %d frames (%d duplicates), want %d", sum.frames, sum.dups, len(frames))
	}
	return peak, final
}

// Offline input faster than real time, against an endpoint whose
// acknowledgements lag: with the offline window the store's memory stays
// within the window and two fragments, and every frame is stored once;
// without it (the control) the store grows with the lag far beyond that.
func TestOfflineWindowBoundsMemory(t *testing.T) {
	_, _, largest := windowFrames(t)
	window := 3 * largest
	// Each acknowledgement 15 ms late: the endpoint takes 45 ms per
	// fragment, the input a fraction of a millisecond, and the upload never
	// idles long enough (windowStarve) to grow the window.
	peak, final := streamWindow(t, "window", window, 15*time.Millisecond)
	t.Logf("window: peak store memory %d bytes, window %d at the start and %d at the end", peak, window, final)
	control, _ := streamWindow(t, "control", -1, 15*time.Millisecond)
	t.Logf("control: peak store memory %d bytes", control)
	if control <= window+2*largest+largest/4 {
		t.Fatalf("without the window the store held only %d bytes: the acknowledgements did not lag, the test proves nothing", control)
	}
}

// Acknowledgements slower than the window lasts (a long link): the upload
// would idle, waiting for them, so the window grows, and memory follows
// it rather than the storage size.
func TestOfflineWindowGrowsOnASlowLink(t *testing.T) {
	_, _, largest := windowFrames(t)
	window := 2 * largest
	peak, final := streamWindow(t, "grows", window, 60*time.Millisecond)
	t.Logf("peak store memory %d bytes, window %d at the start and %d at the end", peak, window, final)
	if final < 2*window {
		t.Fatalf("the window stayed at %d bytes (from %d) while 60 ms acknowledgements idled the upload", final, window)
	}
}
