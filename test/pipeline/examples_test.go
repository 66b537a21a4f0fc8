package pipeline

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/source"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// The examples users copy, built and run against the local endpoint.

// runExample runs a built example with the plugin and ep's credentials.
func runExample(t *testing.T, ep *endpoint, env []string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(gstEnv(testenv.PluginDir(t), ep), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish within 120 s:\n%s", name, out.String())
	}
	rc := 0
	if ee, ok := err.(*exec.ExitError); ok {
		rc = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "CRITICAL") {
		t.Errorf("%s: GLib CRITICAL in the output:\n%s", name, out.String())
	}
	return out.String(), rc
}

// checkApp checks what the C and Python examples print on a good run.
func checkApp(t *testing.T, out string, rc int, signals bool) {
	t.Helper()
	if rc != 0 {
		t.Fatalf("exit %d:\n%s", rc, out)
	}
	want := []string{"message kvs-fragment-ack, type=(string)PERSISTED", "eos: "}
	if signals {
		want = append(want, "signal fragment-ack PERSISTED")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("no %q in the output:\n%s", w, out)
		}
	}
	if strings.Contains(out, "eos: 0 fragments persisted") {
		t.Errorf("no fragment persisted:\n%s", out)
	}
}

// checkFailure checks a run that fails: kvs-stream-failed comes before the
// element error (an application that stops at the first ERROR sees it), the
// stream-error signal is raised, there is one error, and the exit status is 1.
func checkFailure(t *testing.T, out string, rc int, signals bool) {
	t.Helper()
	if rc != 1 {
		t.Fatalf("exit %d, want 1:\n%s", rc, out)
	}
	failed, errAt := strings.Index(out, "message kvs-stream-failed"), strings.Index(out, "error from ")
	if failed < 0 || errAt < 0 || failed > errAt {
		t.Errorf("kvs-stream-failed (at %d) must come before the element error (at %d):\n%s", failed, errAt, out)
	}
	if signals && !strings.Contains(out, "signal stream-error status=") {
		t.Errorf("no stream-error signal:\n%s", out)
	}
	if n := strings.Count(out, "error from "); n != 1 {
		t.Errorf("%d errors, want one per failure:\n%s", n, out)
	}
}

func TestExampleC(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testenv.Root(), "examples", "c", "kvssink_app.c"))
	if err != nil {
		t.Fatal(err)
	}
	bin := testenv.BuildGstHost(t, string(src))
	ep := startEndpoint(t)
	out, rc := runExample(t, ep, nil, bin, "example-c", "60")
	checkApp(t, out, rc, true)
	if got := len(listFragments(t, ep.url, "example-c")); got != 2 {
		t.Errorf("%d fragments stored, want 2", got)
	}

	out, rc = runExample(t, ep, []string{"AWS_SECRET_ACCESS_KEY=wrong-secret"}, bin, "example-c", "30")
	checkFailure(t, out, rc, true)

	t.Run("iot-certificate", func(t *testing.T) {
		ep, iotEP, devs := iotEndpoint(t)
		st := strings.TrimPrefix(iotProperty(iotEP, "", devs["cam1"]), "iot-certificate=")
		out, rc := runExample(t, ep, []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, bin, "cam1", "30", st)
		checkApp(t, out, rc, true)
		if !strings.Contains(out, "message kvs-iot-certificate, certificate-id=(string)"+devs["cam1"].ID) {
			t.Errorf("no kvs-iot-certificate message:\n%s", out)
		}
	})
}

func TestExamplePython(t *testing.T) {
	python := testenv.Tool(t, "/usr/bin/python3", "python3-gi")
	script := filepath.Join(testenv.Root(), "examples", "python", "kvssink_app.py")
	ep := startEndpoint(t)
	out, rc := runExample(t, ep, nil, python, script, "example-py", "--frames", "60")
	checkApp(t, out, rc, false)

	out, rc = runExample(t, ep, []string{"AWS_SECRET_ACCESS_KEY=wrong-secret"}, python, script, "example-py", "--frames", "30")
	checkFailure(t, out, rc, true)

	t.Run("iot-certificate", func(t *testing.T) {
		ep, iotEP, devs := iotEndpoint(t)
		st := strings.TrimPrefix(iotProperty(iotEP, "", devs["cam1"]), "iot-certificate=")
		out, rc := runExample(t, ep, []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="}, python, script, "cam1", "--frames", "30", "--iot-certificate", st)
		checkApp(t, out, rc, false)
	})
}

// TestExampleGo uploads a file's frames with the pure-Go core and reads
// them back with pkg/source.
func TestExampleGo(t *testing.T) {
	goTool := testenv.Tool(t, "go", "golang")
	bin := filepath.Join(t.TempDir(), "kvsupload")
	if out, err := exec.Command(goTool, "build", "-o", bin, filepath.Join(testenv.Root(), "examples", "kvsupload")).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	in := filepath.Join(t.TempDir(), "in.mkv")
	if r := launch(t, nil, 60*time.Second, "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! matroskamux ! filesink location="+in); r.rc != 0 {
		t.Fatalf("making the input: %s", r.output)
	}
	ep := startEndpoint(t)
	out, rc := runExample(t, ep, nil, bin, "-stream", "example-go", "-i", in)
	if rc != 0 || !strings.Contains(out, "90 frames uploaded to example-go, 3 fragments persisted") {
		t.Fatalf("exit %d:\n%s", rc, out)
	}
	// Read the stream back and count the frames.
	list := listFragments(t, ep.url, "example-go")
	if len(list) != 3 {
		t.Fatalf("%d fragments, want 3", len(list))
	}
	frames := 0
	var buf bytes.Buffer
	s, err := source.New(source.Config{StreamName: "example-go", Region: "us-west-2", Endpoint: ep.url, Credentials: testCredentials(),
		Archive: &source.Range{Start: list[0].ProducerTimestamp, End: list[2].ProducerTimestamp}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), func(b []byte) error { buf.Write(b); return nil }); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "back.mkv")
	os.WriteFile(path, buf.Bytes(), 0o644)
	frames = demuxDecode(t, path, "h264")
	if frames != 90 {
		t.Errorf("decoded %d frames back, want 90", frames)
	}
}
