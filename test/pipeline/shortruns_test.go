package pipeline

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Many short runs in a row: each hands its last buffers to the render
// queue and ends at once, the moment a lost wake-up of the queue's
// drainer would leave a buffer untaken and the end of stream waiting for
// it forever. Every run must end, and every frame reach the endpoint.
func TestShortRunsEnd(t *testing.T) {
	ep := startEndpoint(t)
	in := filepath.Join(t.TempDir(), "in.mp4")
	if r := launch(t, nil, 120*time.Second, "videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc key-int-max=10 ! h264parse ! mp4mux ! filesink location="+in); r.rc != 0 {
		t.Fatalf("encoding the input failed:\n%s", tail([]byte(r.output)))
	}
	const runs = 40
	for i := range runs {
		name := "short" + strconv.Itoa(i)
		r := launch(t, ep, 60*time.Second, "filesrc location="+in+" ! qtdemux ! h264parse ! "+kvssink(name, "streaming-type=offline"))
		if r.rc != 0 {
			t.Fatalf("run %d failed:\n%s", i, tail([]byte(r.output)))
		}
		frags, err := ep.srv.Fragments(name)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range frags {
			n += f.Frames
		}
		if n != 30 {
			t.Fatalf("run %d: the endpoint holds %d frames, want 30", i, n)
		}
	}
}
