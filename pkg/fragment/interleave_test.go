package fragment

import (
	"errors"
	"testing"
	"time"
)

const msec = time.Millisecond

var wall = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func popAll(iv *Interleaver) (out []Queued) { return popAt(iv, wall) }

func popAt(iv *Interleaver, now time.Time) (out []Queued) {
	for {
		q, ok := iv.Pop(now)
		if !ok {
			return out
		}
		out = append(out, q)
	}
}

func TestInterleaverOrdersByTimeVideoFirstAtTies(t *testing.T) {
	iv := NewInterleaver(msec, 2*time.Second, 1, 2)
	// Audio arrives ahead of video; equal milliseconds put video first.
	for _, a := range []time.Duration{0, 21 * msec, 42 * msec, 64 * msec} {
		if err := iv.Push(Frame{Track: 2, PTS: a, Keyframe: true, Data: []byte{2}}, a, wall); err != nil {
			t.Fatal(err)
		}
	}
	if q, ok := iv.Pop(wall); ok {
		t.Fatalf("popped %+v before the video track delivered anything", q)
	}
	// 42.4 msec and 42.9 msec are the same timecode: video (track 1) goes first.
	for _, v := range []time.Duration{0, 33 * msec, 42*msec + 900*time.Microsecond, 66 * msec} {
		if err := iv.Push(Frame{Track: 1, PTS: v, Keyframe: v == 0, Data: []byte{1}}, v, wall); err != nil {
			t.Fatal(err)
		}
	}
	var got []uint64
	for _, q := range popAll(iv) {
		got = append(got, q.Frame.Track)
	}
	// 0v 0a 21a 33v 42v 42a 64a; 66v stays until audio says where it is.
	want := []uint64{1, 2, 2, 1, 1, 2, 2}
	if len(got) != len(want) {
		t.Fatalf("popped tracks %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("popped tracks %v, want %v", got, want)
		}
	}
	if iv.Queued() != 1 {
		t.Fatalf("%d frames queued, want the last video frame", iv.Queued())
	}
	iv.End(2)
	if q, ok := iv.Pop(wall); !ok || q.Frame.Track != 1 {
		t.Fatalf("after the audio ended the video frame must leave, got %+v %v", q, ok)
	}
}

func TestInterleaverStallAndResume(t *testing.T) {
	iv := NewInterleaver(msec, time.Second, 1, 2)
	now := wall
	push := func(track uint64, at time.Duration) error {
		return iv.Push(Frame{Track: track, PTS: at, Keyframe: true, Data: []byte{byte(track)}}, at, now)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(push(2, 0))
	must(push(1, 0))
	popAll(iv)
	// Audio goes silent; video runs on, faster than real time: ten seconds
	// of video in half a second of wall time is no stall.
	for at := 33 * msec; at < 10*time.Second; at += 33 * msec {
		now = now.Add(time.Millisecond + 500*time.Microsecond)
		must(push(1, at))
	}
	if out := popAt(iv, now); len(out) != 1 || out[0].Frame.Track != 2 || len(iv.Stalled()) != 0 {
		t.Fatalf("%d frames left and stalled=%v before the stall time, want only the audio frame", len(out), iv.Stalled())
	}
	if ahead := iv.Ahead(1); ahead < 9*time.Second {
		t.Fatalf("video ahead by %v", ahead)
	}
	at, ok := iv.StallAt()
	if !ok || !at.Equal(wall.Add(time.Second)) {
		t.Fatalf("StallAt = %v %v, want a second after the audio's last frame", at, ok)
	}
	// While paused (zero time) nothing stalls.
	if out := popAt(iv, time.Time{}); len(out) != 0 {
		t.Fatalf("%d frames left while stall detection was off", len(out))
	}
	out := popAt(iv, at)
	if len(out) != 303 {
		t.Fatalf("%d frames left after the stall, want 303", len(out))
	}
	if s := iv.Stalled(); len(s) != 1 || s[0] != 2 {
		t.Fatalf("stalled = %v, want [2]", s)
	}
	if s := iv.Stalled(); len(s) != 0 {
		t.Fatalf("stall reported twice: %v", s)
	}
	// Audio comes back late (behind what left): refused, not reordered.
	if err := push(2, 500*msec); !errors.Is(err, ErrLate) {
		t.Fatalf("late frame: %v, want ErrLate", err)
	}
	// And in time: it is live again, and the interleaver waits for it.
	must(push(2, 10100*msec))
	must(push(1, 10200*msec))
	if q, ok := iv.Pop(at); !ok || q.Frame.Track != 2 {
		t.Fatalf("popped %+v, want the resumed audio frame", q)
	}
	if q, ok := iv.Pop(at); ok {
		t.Fatalf("popped %+v while the live audio track has nothing queued", q)
	}
	if !iv.Live(2) {
		t.Fatal("audio not live after it resumed")
	}
}

func TestInterleaverRefusesBackwardsAndNeverFedTrackStalls(t *testing.T) {
	iv := NewInterleaver(msec, 500*msec, 1, 2)
	base := time.Duration(1_700_000_000) * time.Second
	if err := iv.Push(Frame{Track: 1, PTS: base, Keyframe: true}, base, wall); err != nil {
		t.Fatal(err)
	}
	if _, ok := iv.Pop(wall.Add(499 * msec)); ok {
		t.Fatal("a never-fed track counted as stalled before the stall time")
	}
	if err := iv.Push(Frame{Track: 1, PTS: base - msec}, base-msec, wall); !errors.Is(err, ErrOrder) {
		t.Fatalf("backwards frame: %v, want ErrOrder", err)
	}
	if err := iv.Push(Frame{Track: 1, PTS: base + 600*msec}, base+600*msec, wall); err != nil {
		t.Fatal(err)
	}
	if n := len(popAt(iv, wall.Add(500*msec))); n != 2 {
		t.Fatalf("%d frames left, want 2 once the silent audio track stalled", n)
	}
	if err := iv.Push(Frame{Track: 3}, 0, wall); err == nil {
		t.Fatal("a frame for an undeclared track was accepted")
	}
	iv.End(2)
	if !iv.Ended(2) || iv.Live(2) {
		t.Fatal("End did not end the track")
	}
	if err := iv.Push(Frame{Track: 2, PTS: base + time.Second}, base+time.Second, wall); err == nil {
		t.Fatal("a frame after the track's end was accepted")
	}
}

// In an audio and video layout only video key frames cut, and never before
// the fragment holds a frame of every declared track (4011).
func TestBuilderAVLayoutCutsAtVideoKeyFramesWithEveryTrack(t *testing.T) {
	b, err := NewBuilder(Config{KeyFrameFragmentation: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetLayout(Layout{CutTrack: 1, Tracks: []uint64{1, 2}, KeyFrameFragmentation: true}); err != nil {
		t.Fatal(err)
	}
	add := func(track uint64, at time.Duration, key bool) *Fragment {
		t.Helper()
		cur, _, err := b.Add(Frame{Track: track, PTS: at, Keyframe: key, Data: []byte{1}})
		if err != nil {
			t.Fatal(err)
		}
		return cur
	}
	if add(2, 0, true) != nil {
		t.Fatal("an audio frame before the first video key frame opened a fragment")
	}
	f0 := add(1, 10*msec, true)
	if f0 == nil || f0.Timecode != 10 {
		t.Fatalf("the video key frame did not open the fragment: %+v", f0)
	}
	// Every frame a key frame, but no audio yet: no cut.
	if add(1, 43*msec, true) != f0 {
		t.Fatal("cut before the fragment held an audio frame")
	}
	if add(2, 50*msec, true) != f0 {
		t.Fatal("an audio frame cut the fragment")
	}
	f1 := add(1, 76*msec, true)
	if f1 == f0 || f1.Timecode != 76 || f0.Tracks[1] != 2 || f0.Tracks[2] != 1 {
		t.Fatalf("want a cut at 76 after 2 video + 1 audio frames, got %+v then %+v", f0.Tracks, f1)
	}
	if err := b.SetLayout(Layout{CutTrack: 2, Tracks: []uint64{1}}); err == nil {
		t.Fatal("a cut track outside the layout was accepted")
	}
}

// FuzzInterleaver drives an interleaver with arbitrary pushes, pops, ends
// and wall-time steps: frames leave in timecode order, each track's in
// arrival order, none is lost or duplicated, and nothing panics.
func FuzzInterleaver(f *testing.F) {
	f.Add([]byte{0, 10, 1, 5, 2, 3, 0, 20, 1, 25, 3, 4, 0, 30})
	f.Add([]byte{1, 0, 1, 200, 3, 200, 2, 2, 0, 1, 4, 2, 1, 255})
	f.Fuzz(func(t *testing.T, ops []byte) {
		iv := NewInterleaver(msec, 500*msec, 1, 2)
		now := wall
		var at [3]time.Duration
		var seq [3]int
		var next [3]int // next sequence number expected out, per track
		in, out := 0, 0
		lastTC := int64(-1 << 62)
		check := func(q Queued) {
			tr := q.Frame.Track
			n := int(q.Frame.Data[0]) | int(q.Frame.Data[1])<<8
			if n != next[tr] {
				t.Fatalf("track %d: frame %d out, want %d", tr, n, next[tr])
			}
			next[tr]++
			// A frame refused by Push never gets a number: numbers are
			// given only to accepted frames (see below).
			if tc := int64(q.Order / msec); tc < lastTC {
				t.Fatalf("timecode %d after %d", tc, lastTC)
			} else {
				lastTC = tc
			}
			out++
		}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%5, time.Duration(ops[i+1])
			tr := uint64(1 + ops[i]/5%2)
			switch op {
			case 0, 1: // push on track tr, arg ms later (or earlier)
				o := at[tr] + (arg-64)*msec
				fr := Frame{Track: tr, PTS: o, Keyframe: true, Data: []byte{byte(seq[tr]), byte(seq[tr] >> 8)}}
				if err := iv.Push(fr, o, now); err == nil {
					seq[tr]++
					in++
					at[tr] = o
				}
			case 2:
				for q, ok := iv.Pop(now); ok; q, ok = iv.Pop(now) {
					check(q)
				}
			case 3:
				now = now.Add(arg * 10 * msec)
			case 4:
				iv.End(tr)
			}
		}
		for q, ok := iv.Drain(); ok; q, ok = iv.Drain() {
			check(q)
		}
		if in != out || iv.Queued() != 0 {
			t.Fatalf("%d frames in, %d out, %d still queued", in, out, iv.Queued())
		}
	})
}

// A frame shown before the key frame that opened its fragment counts in the
// fragment's span, as the service measures it (4002 above 10 s).
func TestBuilderSpanCountsFramesBeforeTheStart(t *testing.T) {
	b, err := NewBuilder(Config{KeyFrameFragmentation: true})
	if err != nil {
		t.Fatal(err)
	}
	add := func(at time.Duration, key bool) *Fragment {
		t.Helper()
		cur, _, err := b.Add(Frame{PTS: at, Keyframe: key, Data: []byte{1}})
		if err != nil {
			t.Fatal(err)
		}
		return cur
	}
	first := add(10*time.Second, true)
	add(10*time.Second-50*msec, false) // shown before the key frame
	for at := 10*time.Second + 33*msec; at < 20*time.Second-50*msec; at += 33 * msec {
		if add(at, false) != first {
			t.Fatalf("cut at %v, before the span reached 10 s", at)
		}
	}
	if next := add(20*time.Second-40*msec, false); next == first || !next.Forced {
		t.Fatalf("a frame 10 s after the fragment's least frame stayed in it (span %v)", first.Last-first.Least)
	}
	if first.Least != 10*time.Second-50*msec {
		t.Fatalf("Least = %v", first.Least)
	}
}
