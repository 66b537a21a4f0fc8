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
