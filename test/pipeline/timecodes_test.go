package pipeline

import (
	"math"
	"testing"
	"time"
)

// The timecode properties decide what the service records as each
// fragment's producer timestamp.
func TestTimecodeProperties(t *testing.T) {
	src := "videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! "
	cases := []struct {
		name  string
		props []string
		// first is the producer timestamp of the first fragment; zero means
		// "about now".
		first time.Time
		step  time.Duration // between the two fragments
	}{
		{"defaults: absolute, rebased on the wall clock", nil, time.Time{}, time.Second},
		{"relative fragment times", []string{"absolute-fragment-times=false"}, time.Time{}, time.Second},
		{"offline from file-start-time", []string{"streaming-type=offline", "file-start-time=1700000000"}, time.Unix(1700000000, 0), time.Second},
		{"timecode-scale 10 ms", []string{"timecode-scale=10"}, time.Time{}, time.Second},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep := startEndpoint(t)
			stream := "tc" + string(rune('a'+i))
			before := time.Now()
			r := launch(t, ep, 60*time.Second, src+kvssink(stream, c.props...))
			if r.rc != 0 {
				t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
			}
			frags, err := ep.srv.Fragments(stream)
			if err != nil || len(frags) != 2 {
				t.Fatalf("%d fragments (%v)", len(frags), err)
			}
			got := frags[0].ProducerTimestamp
			if c.first.IsZero() {
				if got.Before(before.Add(-time.Second)) || got.After(time.Now()) {
					t.Fatalf("first fragment at %v, want between %v and now", got, before)
				}
			} else if !got.Equal(c.first) {
				t.Fatalf("first fragment at %v, want %v", got, c.first)
			}
			if d := frags[1].ProducerTimestamp.Sub(got); math.Abs(float64(d-c.step)) > float64(20*time.Millisecond) {
				t.Fatalf("fragments %v apart, want %v", d, c.step)
			}
			validate(t, ep.capture(t, stream, 1)[0], 60)
		})
	}
}

// key-frame-fragmentation=false: a fragment starts at the first key frame
// after fragment-duration, so 1 s GOPs make 2 s fragments.
func TestFragmentDuration(t *testing.T) {
	ep := startEndpoint(t)
	r := launch(t, ep, 60*time.Second, "videotestsrc num-buffers=150 ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! "+
		kvssink("fragdur", "key-frame-fragmentation=false", "fragment-duration=2000"))
	if r.rc != 0 {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	frags, err := ep.srv.Fragments("fragdur")
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, f := range frags {
		sizes = append(sizes, f.Frames)
	}
	if len(sizes) != 3 || sizes[0] != 60 || sizes[1] != 60 || sizes[2] != 30 {
		t.Fatalf("fragments of %v frames, want [60 60 30]", sizes)
	}
	if n := packets(t, ep.capture(t, "fragdur", 1)[0], "v"); n != 150 {
		t.Fatalf("%d frames stored", n)
	}
}
