package pipeline

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// Input far ahead of real time puts kvssink's render queue in batch mode
// (the drainer is woken per sixteen buffers, not per buffer). When such
// input pauses without ending, every buffer rendered before the pause still
// reaches the core within the queue's timer: the streaming thread is held
// for a second after each of three buffer counts, and the kvs-metrics
// messages posted meanwhile must count every one of those frames. The
// counts are not multiples of sixteen, so without the timer some frames
// would wait in the queue until the input resumed.
func TestBatchModeLosesNoTimeOnPause(t *testing.T) {
	ep := startEndpoint(t)
	pipeline := "videotestsrc num-buffers=400 ! video/x-raw,width=320,height=240,framerate=30/1 ! " +
		"x264enc speed-preset=ultrafast key-int-max=30 bframes=0 tune=zerolatency ! h264parse ! identity name=i ! " +
		kvssink("batch-pause", "name=k streaming-type=offline metrics-interval=100")
	out := runScript(t, ep, "pause.py", pipeline, "150,223,301", "1.0")
	if want := "pause 150 frames 150\npause 223 frames 223\npause 301 frames 301\neos"; out != want {
		t.Fatalf("frames in the core during each pause:\n%s\nwant\n%s", out, want)
	}
	if n := storedFrames(t, ep, "batch-pause"); n != 400 {
		t.Fatalf("the endpoint holds %d frames, want 400", n)
	}
}

// In batch mode the buffers the core is done with wait for the next render
// to unref them on the streaming thread. An upstream whose buffer pool is
// small (three buffers here, as a hardware encoder's may be) sends no
// render until a buffer comes back: the drainer must give them back on its
// own, or the stream stalls. Every frame must arrive, without a stall.
func TestBatchModeReturnsPoolBuffers(t *testing.T) {
	ep := startEndpoint(t)
	out := runScript(t, ep, "pool.py", kvssink("batch-pool", "streaming-type=offline"), "300", "3")
	if out != "pushed 300\neos" {
		t.Fatalf("appsrc with a 3-buffer pool: %q, want every frame pushed and the end of stream", out)
	}
	if n := storedFrames(t, ep, "batch-pool"); n != 300 {
		t.Fatalf("the endpoint holds %d frames, want 300", n)
	}
}

// runScript runs a testdata Python script against ep, bounded by three
// minutes, and returns its output; a failure to run or finish is fatal.
func runScript(t *testing.T, ep *endpoint, script string, args ...string) string {
	t.Helper()
	python := testenv.Tool(t, "/usr/bin/python3", "python3-gi")
	cmd := exec.Command(python, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Env = gstEnv(testenv.PluginDir(t), ep)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not finish in 3 minutes:\n%s", script, out)
	}
	if err != nil {
		t.Fatalf("%s: %v:\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out))
}

// storedFrames is how many frames the endpoint holds in stream.
func storedFrames(t *testing.T, ep *endpoint, stream string) int {
	t.Helper()
	frags, err := ep.srv.Fragments(stream)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range frags {
		n += f.Frames
	}
	return n
}
