package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// examples/iot-walkthrough/walkthrough.sh runs as a user runs it: the KVS
// developer guide's IoT walkthrough with awscli, curl and jq against the
// kvslocal program, kvssink streaming with the certificate, kvsgo reading
// the stream back, a second camera refused, the certificate-id variant and
// the clean-up. The stream read back holds every frame, and the endpoint's
// audit log has the calls of every service.
func TestIoTWalkthroughScript(t *testing.T) {
	for _, tool := range []struct{ name, pkg string }{{"/usr/bin/aws", "awscli"}, {"curl", "curl"}, {"jq", "jq"}, {"gst-launch-1.0", "gstreamer1.0-tools"}} {
		testenv.Tool(t, tool.name, tool.pkg)
	}
	ffprobe := testenv.Tool(t, "ffprobe", "ffmpeg")
	plugin := testenv.PluginDir(t)
	bin := t.TempDir()
	for _, p := range []struct{ out, pkg string }{{"kvslocal", "./test/kvslocal/cmd/kvslocal"}, {"kvsgo", "./examples/kvsgo"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, p.out), p.pkg)
		cmd.Dir = testenv.Root()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", p.pkg, err, out)
		}
	}
	work := t.TempDir()
	const frames = 60
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.Root(), "examples", "iot-walkthrough", "walkthrough.sh"))
	cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir(), "WORK=" + work, "FRAMES=" + strconv.Itoa(frames),
		"PLAY_SINK=fakesink", "KVSLOCAL=" + filepath.Join(bin, "kvslocal"), "KEEP=",
		"GST_PLUGIN_PATH=" + plugin, "GST_REGISTRY=" + filepath.Join(plugin, "registry.bin"), "KVSGO_LOOPBACK_ONLY=1"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the walkthrough did not finish:\n%s", tail(out.Bytes()))
	}
	if err != nil || !strings.Contains(out.String(), "== walkthrough complete") {
		log, _ := os.ReadFile(filepath.Join(work, "kvslocal.log"))
		t.Fatalf("walkthrough: %v\n%s\nkvslocal:\n%s", err, tail(out.Bytes()), tail(log))
	}
	for _, want := range []string{"camera 2 as thing kvs_example_camera_2 → refused: AccessDeniedException",
		"left: 0 things, 0 certificates, 0 roles", "fragments, " + strconv.Itoa(frames) + " frames"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the walkthrough's output lacks %q", want)
		}
	}
	hint, _ := os.ReadFile(filepath.Join(work, "camera2-thing.log"))
	if !bytes.Contains(hint, []byte(`iot-thing-name is not set, so the thing name is the stream name "kvs_example_camera_stream"`)) {
		t.Errorf("the default-thing refusal does not explain itself:\n%s", tail(hint))
	}
	probe, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
		filepath.Join(work, "kvs_example_camera_stream.mkv")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(probe)) != strconv.Itoa(frames) {
		t.Errorf("ffprobe of the stream read back: %v %s, want %d frames", err, probe, frames)
	}
	// Every service's calls are in the audit log, under its event source.
	f, err := os.Open(filepath.Join(work, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev struct{ EventSource, EventName, ErrorCode string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		seen[ev.EventSource+" "+ev.EventName+" "+ev.ErrorCode] = true
	}
	for _, want := range []string{"iot.amazonaws.com CreateThingType ", "iot.amazonaws.com CreateKeysAndCertificate ", "iam.amazonaws.com CreateRole ",
		"iam.amazonaws.com PutRolePolicy ", "kinesisvideo.amazonaws.com PutMedia ", "kinesisvideo.amazonaws.com DescribeStream AccessDeniedException",
		"iot.amazonaws.com DeleteThingType ", "iam.amazonaws.com DeleteRole "} {
		if !seen[want] {
			t.Errorf("audit log has no %q event", want)
		}
	}
}
