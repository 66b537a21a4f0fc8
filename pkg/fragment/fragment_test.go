package fragment

import (
	"bytes"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

type step struct {
	pts time.Duration
	key bool
}

func run(t *testing.T, cfg Config, steps []step) []*Fragment {
	t.Helper()
	b, err := NewBuilder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Fragment
	for _, s := range steps {
		cur, closed, err := b.Add(Frame{PTS: s.pts, Keyframe: s.key, Data: []byte{1, 2, 3}})
		if err != nil {
			t.Fatal(err)
		}
		if closed != nil && (len(out) == 0 || out[len(out)-1] != closed) {
			t.Fatalf("closed fragment %d was not the last one returned", closed.Seq)
		}
		if cur != nil && (len(out) == 0 || out[len(out)-1] != cur) {
			out = append(out, cur)
		}
	}
	if f := b.Flush(); f != nil && !f.Closed {
		t.Fatal("flush did not close")
	}
	return out
}

func gop(start, n, stepMs int, keyEvery int) []step {
	var s []step
	for i := 0; i < n; i++ {
		s = append(s, step{ms(start + i*stepMs), i%keyEvery == 0})
	}
	return s
}

func TestKeyframeFragmentation(t *testing.T) {
	frags := run(t, Config{KeyFrameFragmentation: true}, gop(1000, 300, 33, 30))
	if len(frags) != 10 {
		t.Fatalf("%d fragments, want 10", len(frags))
	}
	for i, f := range frags {
		if f.Frames != 30 || !f.Keyframe || f.Forced || f.Timecode != uint64(1000+i*990) {
			t.Fatalf("fragment %d = %+v", i, f)
		}
	}
}

func TestSkipsUntilKeyframe(t *testing.T) {
	b, _ := NewBuilder(Config{KeyFrameFragmentation: true})
	for i := 0; i < 5; i++ {
		if cur, _, _ := b.Add(Frame{PTS: ms(i), Data: []byte{1}}); cur != nil {
			t.Fatal("non-key frame started a fragment")
		}
	}
	if b.Skipped() != 5 {
		t.Fatalf("skipped %d", b.Skipped())
	}
}

func TestFragmentDuration(t *testing.T) {
	// key every 10 frames (330 ms); fragments must be >= 2 s, so every 7th GOP.
	frags := run(t, Config{KeyFrameFragmentation: false, FragmentDuration: 2 * time.Second}, gop(0, 300, 33, 10))
	for _, f := range frags[:len(frags)-1] {
		if f.Frames != 70 {
			t.Fatalf("fragment %d has %d frames, want 70", f.Seq, f.Frames)
		}
	}
}

func TestLongGOPIsCutBeforeTheServiceLimit(t *testing.T) {
	frags := run(t, Config{KeyFrameFragmentation: true}, gop(0, 750, 33, 1000)) // 24.7 s, one key frame
	if len(frags) != 3 {
		t.Fatalf("%d fragments, want 3", len(frags))
	}
	for _, f := range frags {
		if f.Last-f.Start >= MaxServiceDuration {
			t.Fatalf("fragment %d spans %v", f.Seq, f.Last-f.Start)
		}
	}
	if !frags[1].Forced || frags[1].Keyframe {
		t.Fatal("second fragment should be a forced cut")
	}
}

func TestKeyframeNotAfterPreviousFramesStaysInFragment(t *testing.T) {
	// B-frame style: a key frame whose pts is not beyond the greatest pts so far.
	frags := run(t, Config{KeyFrameFragmentation: true}, []step{{ms(0), true}, {ms(100), false}, {ms(50), false}, {ms(100), true}, {ms(200), true}})
	if len(frags) != 2 || frags[0].Frames != 4 {
		t.Fatalf("fragments: %d, first has %d frames", len(frags), frags[0].Frames)
	}
}

func TestTagsPrecedeCluster(t *testing.T) {
	b, _ := NewBuilder(Config{KeyFrameFragmentation: true})
	b.AddTags(mkv.SimpleTag{Name: "k", Value: "v"})
	cur, _, _ := b.Add(Frame{PTS: ms(5), Keyframe: true, Data: []byte{9}})
	tags := mkv.AppendTags(nil, []mkv.SimpleTag{{Name: "k", Value: "v"}})
	if !bytes.HasPrefix(cur.Data, tags) || !bytes.HasPrefix(cur.Data[len(tags):], mkv.AppendClusterStart(nil, 5)) {
		t.Fatalf("data = %x", cur.Data)
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{{MaxDuration: 11 * time.Second}, {FragmentDuration: 31 * time.Second}, {TimecodeScale: time.Nanosecond}} {
		if _, err := NewBuilder(c); err == nil {
			t.Errorf("NewBuilder(%+v) accepted", c)
		}
	}
}

func BenchmarkAdd(b *testing.B) {
	bl, _ := NewBuilder(Config{KeyFrameFragmentation: true})
	payload := make([]byte, 32<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for i := 0; i < b.N; i++ {
		bl.Add(Frame{PTS: time.Duration(i) * 33 * time.Millisecond, Keyframe: i%30 == 0, Data: payload})
	}
}

// A 1080p 8 Mb/s stream: 30 fps, a 120 KB key frame and 30 KB frames, one
// fragment a second. Each frame is copied once, into its fragment.
func BenchmarkAdd1080p8Mbps(b *testing.B) {
	bl, _ := NewBuilder(Config{KeyFrameFragmentation: true})
	key, delta := make([]byte, 120<<10), make([]byte, 30<<10)
	b.ReportAllocs()
	var bytes int64
	for i := 0; i < b.N; i++ {
		f := Frame{PTS: time.Duration(i) * time.Second / 30, Keyframe: i%30 == 0, Data: delta}
		if f.Keyframe {
			f.Data = key
		}
		bytes += int64(len(f.Data))
		if _, _, err := bl.Add(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "payload-B/frame")
}
