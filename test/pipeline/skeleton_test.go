package pipeline

import (
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
)

// The pipelines of the walking skeleton: 300 frames of test video reach the
// endpoint whole, one cluster per key frame.
func TestH264Pipelines(t *testing.T) {
	cases := []struct {
		name, stream, encoder string
	}{
		{"keyint 30", "s1", "x264enc key-int-max=30"},
		// x264enc's defaults: B-frames and a 250-frame key interval. The
		// official kvssink sends 0 bytes here and exits 0 after 120 s.
		{"x264 defaults with B-frames", "s2", "x264enc"},
		// Annex-B in, AVCC out with the CodecPrivate built from in-band SPS/PPS.
		{"byte-stream", "s3", "x264enc key-int-max=30 ! video/x-h264,stream-format=byte-stream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ep := startEndpoint(t)
			r := launch(t, ep, 120*time.Second, "videotestsrc num-buffers=300 ! "+c.encoder+" ! h264parse ! "+kvssink(c.stream))
			if r.rc != 0 {
				t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
			}
			paths := ep.capture(t, c.stream, 1)
			validate(t, paths[0], 300)
		})
	}
}

// Bad input gets an element error naming the problem, quickly, never a hang.
func TestBadInput(t *testing.T) {
	ep := startEndpoint(t)
	src := "videotestsrc num-buffers=30 ! x264enc ! h264parse ! "
	cases := []struct {
		name     string
		pipeline string
		env      []string
		want     string
		within   time.Duration
	}{
		{"stream name", src + kvssink("bad/name"), nil, "stream-name", 10 * time.Second},
		{"wrong secret", src + kvssink("s3", "secret-key=wrong", "access-key="+testAccessKey), nil, "InvalidSignatureException", 20 * time.Second},
		{"unreachable endpoint", src + kvssink("s4", "control-plane-uri=http://127.0.0.1:9", "connection-timeout=2", "completion-timeout=3"), nil, "127.0.0.1:9", 15 * time.Second},
		{"avc caps without codec_data", "videotestsrc num-buffers=30 ! x264enc ! h264parse ! capssetter replace=true caps=video/x-h264,stream-format=avc,alignment=au ! " + kvssink("s5"), nil, "codec_data", 20 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := launch(t, ep, 60*time.Second, c.pipeline, c.env...)
			if r.rc == 0 {
				t.Fatalf("gst-launch exited 0:\n%s", r.output)
			}
			if !strings.Contains(r.output, "ERROR: from element") || !strings.Contains(r.output, c.want) {
				t.Fatalf("no element error naming %q:\n%s", c.want, r.output)
			}
			if r.duration > c.within {
				t.Errorf("took %v, want under %v", r.duration, c.within)
			}
		})
	}
}

// EOS waits for the last acknowledgement; when it never comes the pipeline
// gets an element error naming what was not acknowledged, never a silent 0.
func TestEOSWithoutAcks(t *testing.T) {
	ep := startEndpoint(t)
	ep.srv.SetFaults(kvslocal.Faults{WithholdAcks: true})
	r := launch(t, ep, 60*time.Second, "videotestsrc num-buffers=60 ! x264enc key-int-max=30 ! h264parse ! "+kvssink("noack", "stop-stream-timeout=3"))
	if r.rc == 0 {
		t.Fatalf("gst-launch exited 0 although no fragment was acknowledged:\n%s", r.output)
	}
	for _, want := range []string{"ERROR: from element", "stop-stream-timeout", "not acknowledged PERSISTED"} {
		if !strings.Contains(r.output, want) {
			t.Fatalf("output lacks %q:\n%s", want, r.output)
		}
	}
	if r.duration > 20*time.Second {
		t.Errorf("took %v with stop-stream-timeout=3", r.duration)
	}
}

// With fragment-acks=false there is nothing to wait for: a clean, quick EOS.
func TestFragmentAcksOff(t *testing.T) {
	ep := startEndpoint(t)
	r := launch(t, ep, 60*time.Second, "videotestsrc num-buffers=60 ! x264enc key-int-max=30 ! h264parse ! "+kvssink("acksoff", "fragment-acks=false"))
	if r.rc != 0 {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	validate(t, ep.capture(t, "acksoff", 1)[0], 60)
}

// The loopback guard: with no endpoint configured the element would go to
// AWS; under KVSGO_LOOPBACK_ONLY it refuses to resolve or dial it, so a test
// can never reach a real AWS host.
func TestLoopbackGuard(t *testing.T) {
	r := launch(t, nil, 60*time.Second, "videotestsrc num-buffers=3 ! x264enc ! h264parse ! "+kvssink("guarded", "aws-region=eu-west-1"))
	if r.rc == 0 || !strings.Contains(r.output, "KVSGO_LOOPBACK_ONLY is set: refusing") || !strings.Contains(r.output, "kinesisvideo.eu-west-1.amazonaws.com") {
		t.Fatalf("the guard did not stop a request to AWS (rc %d):\n%s", r.rc, r.output)
	}
}

// H.265 in both forms plays back: byte-stream gets an hvcC built from the
// in-band VPS/SPS/PPS.
func TestH265Pipelines(t *testing.T) {
	for _, format := range []string{"hvc1", "byte-stream"} {
		t.Run(format, func(t *testing.T) {
			ep := startEndpoint(t)
			stream := "h265-" + strings.ReplaceAll(format, "-", "")
			r := launch(t, ep, 120*time.Second, "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240 ! x265enc key-int-max=30 ! h265parse ! video/x-h265,stream-format="+format+",alignment=au ! "+kvssink(stream))
			if r.rc != 0 {
				t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
			}
			validateCodec(t, ep.capture(t, stream, 1)[0], 60, "h265")
		})
	}
}

// An elementary stream read from a file has no timestamps at all
// (filesrc ! h264parse): frames are spaced by the caps' framerate, so 90
// frames at 30 fps span 3 s, in three fragments.
func TestNoTimestampsFromFile(t *testing.T) {
	raw := filepath.Join(t.TempDir(), "in.h264")
	if r := launch(t, nil, 60*time.Second, "videotestsrc num-buffers=90 ! video/x-raw,framerate=30/1 ! x264enc key-int-max=30 ! video/x-h264,stream-format=byte-stream ! filesink location="+raw); r.rc != 0 {
		t.Fatalf("making the input: %s", r.output)
	}
	ep := startEndpoint(t)
	r := launch(t, ep, 60*time.Second, "filesrc location="+raw+" ! h264parse ! "+kvssink("nopts"))
	if r.rc != 0 {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	path := ep.capture(t, "nopts", 1)[0]
	validate(t, path, 90)
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var first, last float64
	lines := strings.Fields(string(out))
	fmt.Sscan(lines[0], &first)
	fmt.Sscan(lines[len(lines)-1], &last)
	if span := last - first; span < 2.9 || span > 3.0 {
		t.Fatalf("90 frames span %.3f s, want 2.967 (30 fps)", span)
	}
}

// A GOP longer than the service's 10 s fragment limit loses nothing: the
// fragment is cut on a non-key frame before the limit (the endpoint rejects
// longer ones with 4002), with one element warning.
func TestLongGOP(t *testing.T) {
	ep := startEndpoint(t)
	// Buffer times start at 1000 h, as a live source's running time does:
	// the warning speaks of stream time, not of the buffers' clock.
	r := launch(t, ep, 120*time.Second, "videotestsrc num-buffers=450 timestamp-offset=3600000000000000 ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc key-int-max=1000 ! h264parse ! "+kvssink("longgop"))
	if r.rc != 0 {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	if n := strings.Count(r.output, "GOP longer than"); n != 1 {
		t.Errorf("%d long-GOP warnings, want 1:\n%s", n, r.output)
	}
	m := regexp.MustCompile(`non-key frame ([0-9.]+)s into the stream`).FindStringSubmatch(r.output)
	if m == nil || strings.Contains(r.output, "1000h") {
		t.Fatalf("the long-GOP warning does not give the cut's stream time:\n%s", r.output)
	}
	if at, _ := strconv.ParseFloat(m[1], 64); at < 9 || at > 10 {
		t.Errorf("cut %ss into the stream, want within the first 10 s", m[1])
	}
	path := ep.capture(t, "longgop", 1)[0]
	if n := packets(t, path, "v"); n != 450 {
		t.Fatalf("%d frames stored, want 450", n)
	}
	frags, err := ep.srv.Fragments("longgop")
	if err != nil || len(frags) != 2 {
		t.Fatalf("fragments %d (%v), want 2", len(frags), err)
	}
	if got := demuxDecode(t, path, "h264"); got != 450 {
		t.Fatalf("matroskademux decoded %d frames, want 450", got)
	}
}

// The official credential file signs the requests when neither the
// properties nor the environment hold keys.
func TestCredentialFile(t *testing.T) {
	ep := startEndpoint(t)
	path := filepath.Join(t.TempDir(), "credential")
	exp := time.Now().Add(30 * time.Minute).UTC().Format("2006-01-02T15:04:05Z")
	if err := os.WriteFile(path, []byte("CREDENTIALS "+testAccessKey+" "+exp+" "+testSecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := launch(t, ep, 60*time.Second, "videotestsrc num-buffers=30 ! x264enc ! h264parse ! "+kvssink("credfile", "credential-path="+path),
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
	if r.rc != 0 {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	validate(t, ep.capture(t, "credfile", 1)[0], 30)
}
