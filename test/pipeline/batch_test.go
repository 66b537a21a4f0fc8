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
	python := testenv.Tool(t, "/usr/bin/python3", "python3-gi")
	pipeline := "videotestsrc num-buffers=400 ! video/x-raw,width=320,height=240,framerate=30/1 ! " +
		"x264enc speed-preset=ultrafast key-int-max=30 bframes=0 tune=zerolatency ! h264parse ! identity name=i ! " +
		kvssink("batch-pause", "name=k streaming-type=offline metrics-interval=100")
	cmd := exec.Command(python, filepath.Join("testdata", "pause.py"), pipeline, "150,223,301", "1.0")
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
		t.Fatalf("the pipeline did not finish in 3 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	want := "pause 150 frames 150\npause 223 frames 223\npause 301 frames 301\neos"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("frames in the core during each pause:\n%s\nwant\n%s", got, want)
	}
	frags, err := ep.srv.Fragments("batch-pause")
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, f := range frags {
		stored += f.Frames
	}
	if stored != 400 {
		t.Fatalf("the endpoint holds %d frames, want 400", stored)
	}
}

// In batch mode the buffers the core is done with wait for the next render
// to unref them on the streaming thread. An upstream whose buffer pool is
// small (three buffers here, as a hardware encoder's may be) sends no
// render until a buffer comes back: the drainer must give them back on its
// own, or the stream stalls. Every frame must arrive, without a stall.
func TestBatchModeReturnsPoolBuffers(t *testing.T) {
	ep := startEndpoint(t)
	python := testenv.Tool(t, "/usr/bin/python3", "python3-gi")
	cmd := exec.Command(python, filepath.Join("testdata", "pool.py"), kvssink("batch-pool", "streaming-type=offline"), "300", "3")
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
		t.Fatalf("the pipeline did not finish in 3 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "pushed 300\neos" {
		t.Fatalf("appsrc with a 3-buffer pool: %q, want every frame pushed and the end of stream", got)
	}
	frags, err := ep.srv.Fragments("batch-pool")
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, f := range frags {
		stored += f.Frames
	}
	if stored != 300 {
		t.Fatalf("the endpoint holds %d frames, want 300", stored)
	}
}
