// Package pipeline runs real gst-launch-1.0 pipelines through kvssink into
// the local endpoint and checks what the endpoint received with independent
// tools: mkvinfo, mkvmerge, ffprobe and matroskademux.
package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

const (
	testAccessKey = "AKIDKVSGOTEST"
	testSecretKey = "kvsgo-test-secret-key-0123456789"
)

func TestMain(m *testing.M) {
	testenv.GuardLoopback()
	os.Exit(m.Run())
}

// endpoint is a local endpoint for one test.
type endpoint struct {
	srv *kvslocal.Server
	url string
	dir string
}

func startEndpoint(t *testing.T) *endpoint {
	t.Helper()
	dir := t.TempDir()
	srv, err := kvslocal.New(kvslocal.Config{
		Dir:           dir,
		Credentials:   []kvslocal.Credential{{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}},
		CaptureBodies: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return &endpoint{srv: srv, url: url, dir: dir}
}

// result is what a gst-launch run did.
type result struct {
	rc       int
	output   string
	duration time.Duration
}

// gstEnv is the environment of a GStreamer process that loads the plugin
// from plugin and uses the test credentials, on loopback only, against ep
// (when not nil).
func gstEnv(plugin string, ep *endpoint) []string {
	env := append(os.Environ(),
		"GST_PLUGIN_PATH="+plugin,
		"GST_REGISTRY="+filepath.Join(plugin, "registry.bin"),
		"AWS_ACCESS_KEY_ID="+testAccessKey,
		"AWS_SECRET_ACCESS_KEY="+testSecretKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"KVSGO_LOOPBACK_ONLY=1",
	)
	if ep != nil {
		env = append(env, "AWS_ENDPOINT_URL_KINESIS_VIDEO="+ep.url)
	}
	return env
}

// launch runs gst-launch-1.0 -e with the plugin and the endpoint's
// credentials, bounded by timeout.
func launch(t *testing.T, ep *endpoint, timeout time.Duration, pipeline string, extraEnv ...string) result {
	t.Helper()
	plugin := testenv.PluginDir(t)
	gst := testenv.Tool(t, "gst-launch-1.0", "gstreamer1.0-tools")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"-e"}, strings.Fields(pipeline)...)
	cmd := exec.CommandContext(ctx, gst, args...)
	cmd.Env = append(gstEnv(plugin, ep), extraEnv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	r := result{output: out.String(), duration: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("gst-launch did not finish within %v:\n%s", timeout, r.output)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.rc = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.output, "CRITICAL") {
		t.Errorf("GLib CRITICAL in the output:\n%s", r.output)
	}
	return r
}

// capture returns the single PutMedia body the endpoint received for stream.
func (ep *endpoint) capture(t *testing.T, stream string, want int) []string {
	t.Helper()
	paths, err := ep.srv.Captures(stream)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != want {
		t.Fatalf("endpoint captured %d PutMedia bodies for %s, want %d", len(paths), stream, want)
	}
	return paths
}

// validate runs the independent validators on one producer MKV and returns
// the frame count ffprobe read and the number of clusters mkvinfo saw.
func validate(t *testing.T, path string, wantFrames int) { validateCodec(t, path, wantFrames, "h264") }

// validateCodec is validate for h264 or h265.
func validateCodec(t *testing.T, path string, wantFrames int, codec string) {
	t.Helper()
	mkvinfo := testenv.Tool(t, "mkvinfo", "mkvtoolnix")
	mkvmerge := testenv.Tool(t, "mkvmerge", "mkvtoolnix")
	ffprobe := testenv.Tool(t, "ffprobe", "ffmpeg")

	info, err := exec.Command(mkvinfo, "-v", path).CombinedOutput()
	if err != nil {
		t.Fatalf("mkvinfo -v %s: %v\n%s", path, err, tail(info))
	}
	clusters := strings.Count(string(info), "|+ Cluster")
	// A full parse and remux. The output is a real file: mkvtoolnix 74 cannot
	// seek in /dev/null to update the header and warns (exit 1) on any input,
	// the official producer's bytes included.
	remux := filepath.Join(t.TempDir(), "remux.mkv")
	if out, err := exec.Command(mkvmerge, "-q", "-o", remux, path).CombinedOutput(); err != nil {
		t.Fatalf("mkvmerge -q -o %s %s: %v\n%s", remux, path, err, out)
	}

	cmd := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("ffprobe wrote to stderr:\n%s", stderr.String())
	}
	n, err := strconv.Atoi(strings.TrimSpace(stdout.String()))
	if err != nil || n != wantFrames {
		t.Errorf("ffprobe read %q frames, want %d", strings.TrimSpace(stdout.String()), wantFrames)
	}

	if got := demuxDecode(t, path, codec); got != wantFrames {
		t.Errorf("matroskademux ! avdec_%s decoded %d frames, want %d", codec, got, wantFrames)
	}

	keys := keyframes(t, path)
	if clusters != keys {
		t.Errorf("mkvinfo shows %d clusters for %d key frames, want one cluster per key frame", clusters, keys)
	}
	t.Logf("%s: %d frames, %d clusters, %d key frames: mkvinfo, mkvmerge, ffprobe and matroskademux agree", filepath.Base(path), n, clusters, keys)
}

var chainRE = regexp.MustCompile(`last-message = chain`)

// demuxDecode decodes path with GStreamer's own demuxer and counts frames.
func demuxDecode(t *testing.T, path, codec string) int {
	t.Helper()
	gst := testenv.Tool(t, "gst-launch-1.0", "gstreamer1.0-tools")
	out, err := exec.Command(gst, "-v", "filesrc", "location="+path, "!", "matroskademux", "!", codec+"parse", "!",
		"avdec_"+codec, "!", "fakesink", "silent=false").CombinedOutput()
	if err != nil {
		t.Fatalf("decoding %s: %v\n%s", path, err, tail(out))
	}
	return len(chainRE.FindAll(out, -1))
}

// keyframes counts the key frames ffprobe sees.
func keyframes(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "K") {
			n++
		}
	}
	return n
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func kvssink(stream string, props ...string) string {
	return fmt.Sprintf("kvssink stream-name=%s %s", stream, strings.Join(props, " "))
}
