package fragment

import (
	"testing"
	"time"
)

// A recycled buffer is reused by a later fragment instead of a new
// allocation; the fragment it came from no longer holds it.
func TestRecycleReusesBuffers(t *testing.T) {
	b, err := NewBuilder(Config{TimecodeScale: time.Millisecond, KeyFrameFragmentation: true})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 10<<10)
	var frags []*Fragment
	for i := range 30 { // three fragments of ten frames
		cur, _, err := b.Add(Frame{PTS: time.Duration(i) * 100 * time.Millisecond, Keyframe: i%10 == 0, Data: frame})
		if err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			frags = append(frags, cur)
		}
	}
	// frags[1] was sized from its predecessor, as every fragment is in a
	// steady stream.
	old := &frags[1].Data[:1][0]
	b.Recycle(frags[1])
	b.Recycle(b.Current()) // the open fragment is never recycled
	if frags[1].Data != nil || b.Current().Data == nil {
		t.Fatal("Recycle kept the closed fragment's buffer or took the open one's")
	}
	cur, _, err := b.Add(Frame{PTS: 3 * time.Second, Keyframe: true, Data: frame})
	for i := 31; i < 40; i++ {
		if _, _, err := b.Add(Frame{PTS: time.Duration(i) * 100 * time.Millisecond, Data: frame}); err != nil {
			t.Fatal(err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if &cur.Data[:1][0] != old || cur.Frames != 10 {
		t.Fatal("the new fragment did not reuse the recycled buffer")
	}
}

// closedFragments returns count fragments of frames frames of size bytes each, closed, from a builder whose
// recycling budget is budget.
func closedFragments(t *testing.T, budget, count, frames, size int) (*Builder, []*Fragment) {
	t.Helper()
	b, err := NewBuilder(Config{KeyFrameFragmentation: true, RecycleBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, size)
	var out []*Fragment
	for i := range count*frames + 1 {
		_, closed, err := b.Add(Frame{PTS: time.Duration(i) * 10 * time.Millisecond, Keyframe: i%frames == 0, Data: frame})
		if err != nil {
			t.Fatal(err)
		}
		if closed != nil {
			out = append(out, closed)
		}
	}
	return b, out
}

// Recycled buffers are kept up to Config.RecycleBytes, no further; with a
// negative budget none is.
func TestRecycleBudget(t *testing.T) {
	b, frags := closedFragments(t, 1<<20, 8, 10, 20<<10) // ~200 KB fragments
	kept := 0
	for _, f := range frags {
		c := cap(f.Data)
		b.Recycle(f)
		if f.Data == nil {
			kept += c
		}
	}
	if kept == 0 || kept > 1<<20 || b.freeSize != kept {
		t.Fatalf("kept %d bytes of buffers (accounted %d) for a budget of %d", kept, b.freeSize, 1<<20)
	}
	if kept+cap(frags[len(frags)-1].Data) <= 1<<20 {
		t.Fatalf("stopped keeping buffers at %d bytes, with room for another under the budget", kept)
	}

	b, frags = closedFragments(t, -1, 2, 10, 20<<10)
	b.Recycle(frags[0])
	if frags[0].Data == nil || len(b.free) != 0 {
		t.Fatal("a negative budget kept a buffer")
	}
}

// The most recently recycled buffer is reused first (its memory is the
// likeliest to be cached), and buffers too small for the stream as it is
// now are let go rather than holding the budget.
func TestRecycleOrderAndEviction(t *testing.T) {
	b, frags := closedFragments(t, 64<<20, 3, 10, 20<<10)
	last := &frags[2].Data[:1][0]
	b.Recycle(frags[0])
	b.Recycle(frags[1])
	b.Recycle(frags[2])
	if got := b.buffer(1, 1); &got[:1][0] != last {
		t.Fatal("the most recently recycled buffer was not reused first")
	}
	// Fragments ten times larger: neither remaining buffer fits, and each
	// new fragment lets the oldest go.
	before := len(b.free)
	big := make([]byte, 400<<10)
	for i := range 3 {
		if _, _, err := b.Add(Frame{PTS: time.Duration(100+i) * time.Second, Keyframe: true, Data: big}); err != nil {
			t.Fatal(err)
		}
	}
	if len(b.free) >= before {
		t.Fatalf("%d buffers too small to use are still kept (%d before)", len(b.free), before)
	}
	total := 0
	for _, f := range b.free {
		total += cap(f)
	}
	if total != b.freeSize {
		t.Fatalf("free list holds %d bytes, accounted %d", total, b.freeSize)
	}
}
