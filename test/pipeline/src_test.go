package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// kvssrc tests: kvssink → local endpoint → kvssrc → matroskademux →
// decoder, with the decoded frames compared, one by one, with the
// producer's own encoded frames decoded the same way.

const (
	srcWidth, srcHeight = 320, 240
	srcFrameSize        = srcWidth * srcHeight * 3 / 2 // I420
)

// fragments is how many fragments the endpoint lists for stream (0 while
// it does not exist or cannot be reached).
func (r *restartable) fragments(t *testing.T, stream string) int {
	return len(listFragments(t, r.endpoint().url, stream))
}

// listFragments lists a stream's fragments with pkg/kvs (nil on any error).
func listFragments(t testing.TB, url, stream string) []kvs.FragmentInfo {
	creds := testCredentials()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: url, Region: kvslocal.DefaultRegion, Credentials: creds, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ctl.GetDataEndpoint(ctx, stream, "LIST_FRAGMENTS")
	if err != nil {
		return nil
	}
	l, err := kvs.ListFragments(ctx, kvs.ArchiveConfig{Endpoint: ep, StreamName: stream, Region: kvslocal.DefaultRegion, Credentials: creds},
		kvs.ListFragmentsInput{Start: time.Unix(1, 0), End: time.Now().Add(time.Hour)})
	if err != nil {
		return nil
	}
	return l
}

func testCredentials() aws.CredentialsProvider {
	return aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}, nil
	}))
}

// bg is a gst-launch-1.0 running in the background.
type bg struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func startGst(t testing.TB, ep *endpoint, timeout time.Duration, pipeline string, extraEnv ...string) *bg {
	t.Helper()
	plugin := testenv.PluginDir(t)
	gst := testenv.Tool(t, "gst-launch-1.0", "gstreamer1.0-tools")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	args := append([]string{"-e", "-m"}, strings.Fields(pipeline)...)
	b := &bg{cmd: exec.CommandContext(ctx, gst, args...), done: make(chan struct{})}
	b.cmd.Env = append(gstEnv(plugin, ep), extraEnv...)
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { b.err = b.cmd.Wait(); cancel(); close(b.done) }()
	t.Cleanup(func() { b.cmd.Process.Kill(); <-b.done })
	return b
}

// wait waits for the process and fails the test unless it exited 0.
func (b *bg) wait(t testing.TB, what string) string {
	t.Helper()
	<-b.done
	out := b.out.String()
	if b.err != nil {
		t.Fatalf("%s: %v\n%s", what, b.err, tail([]byte(out)))
	}
	if strings.Contains(out, "CRITICAL") {
		t.Errorf("%s: GLib CRITICAL in the output:\n%s", what, tail([]byte(out)))
	}
	return out
}

// frameHashes splits raw I420 frames and hashes each.
func frameHashes(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || len(b)%srcFrameSize != 0 {
		t.Fatalf("%s: %d bytes is not a whole number of %dx%d I420 frames", path, len(b), srcWidth, srcHeight)
	}
	var hs []string
	for i := 0; i < len(b); i += srcFrameSize {
		s := sha256.Sum256(b[i : i+srcFrameSize])
		hs = append(hs, hex.EncodeToString(s[:8]))
	}
	return hs
}

// decodeToRaw decodes a Matroska file to raw I420 frames.
func decodeToRaw(t *testing.T, mkv string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "ref.yuv")
	r := launch(t, nil, 120*time.Second, "filesrc location="+mkv+" ! matroskademux ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! filesink location="+raw)
	if r.rc != 0 {
		t.Fatalf("decoding the reference: %s", r.output)
	}
	return raw
}

// producer is kvssink fed by x264, with the same encoded frames also saved
// to a Matroska file (the reference).
func producer(stream string, frames int, ref string, sinkProps ...string) string {
	return fmt.Sprintf("videotestsrc is-live=true num-buffers=%d pattern=ball ! video/x-raw,width=%d,height=%d,framerate=30/1 ! "+
		"x264enc key-int-max=15 tune=zerolatency speed-preset=ultrafast ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! "+
		"tee name=t ! queue ! %s t. ! queue ! matroskamux ! filesink location=%s", frames, srcWidth, srcHeight, kvssink(stream, sinkProps...), ref)
}

func consumer(stream, out string, props ...string) string {
	return fmt.Sprintf("kvssrc stream-name=%s %s ! matroskademux ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! filesink location=%s",
		stream, strings.Join(props, " "), out)
}

// sameFrames compares decoded frame hashes.
func sameFrames(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("kvssrc decoded %d frames, the producer encoded %d", len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		if got[i] != want[i] {
			t.Fatalf("decoded frame %d differs from the producer's (first difference)", i)
		}
	}
}

// waitFor polls cond (state held by another process) until it holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSrcLiveThroughEndpointRestart plays a stream while kvssink produces
// it, restarts the endpoint in the middle, and checks that the decoder saw
// every frame once, bit-exact.
func TestSrcLiveThroughEndpointRestart(t *testing.T) {
	ep := newRestartable(t, kvslocal.Faults{})
	dir := t.TempDir()
	ref, out := filepath.Join(dir, "ref.mkv"), filepath.Join(dir, "out.yuv")
	const frames = 300 // 10 s at 30 fps
	prod := startGst(t, ep.endpoint(), 180*time.Second, producer("src-live", frames, ref))
	waitFor(t, 60*time.Second, "the first fragment", func() bool { return ep.fragments(t, "src-live") > 0 })
	cons := startGst(t, ep.endpoint(), 180*time.Second, consumer("src-live", out, "start-selector=earliest", "idle-timeout=15"))
	waitFor(t, 60*time.Second, "a third of the stream", func() bool { return ep.fragments(t, "src-live") >= frames/15/3 })
	ep.restart(time.Second)
	prod.wait(t, "producer")
	msgs := cons.wait(t, "kvssrc")
	got, want := frameHashes(t, out), frameHashes(t, decodeToRaw(t, ref))
	sameFrames(t, got, want)
	t.Logf("%d frames decoded, equal to the producer's; %d kvs-resumed messages", len(got), strings.Count(msgs, "kvs-resumed"))
	if n := strings.Count(msgs, "kvs-resumed"); n == 0 {
		t.Errorf("no kvs-resumed message although the endpoint restarted:\n%s", tail([]byte(msgs)))
	}
	if n := strings.Count(msgs, "kvs-fragment-received"); n < frames/15 {
		t.Errorf("%d kvs-fragment-received messages, want at least %d", n, frames/15)
	}
	if !regexp.MustCompile(`kvs-fragment-received, .*millis-behind-now=\(gint64\)\d+;`).MatchString(msgs) {
		t.Errorf("no kvs-fragment-received message says how far behind the head it is:\n%s", tail([]byte(msgs)))
	}
}

// produce runs a producer to the end (not live: as fast as it encodes) and
// returns the reference frames it encoded and the stream's fragments.
func produce(t *testing.T, ep *endpoint, stream string, frames int, sinkProps ...string) ([]string, []kvs.FragmentInfo) {
	return produceAt(t, ep, stream, frames, false, sinkProps...)
}

// produceAt is produce, live (at 30 fps, so that the service's timestamps
// are as far apart as the frames) or not.
func produceAt(t *testing.T, ep *endpoint, stream string, frames int, live bool, sinkProps ...string) ([]string, []kvs.FragmentInfo) {
	t.Helper()
	ref := filepath.Join(t.TempDir(), "ref.mkv")
	p := producer(stream, frames, ref, sinkProps...)
	if !live {
		p = strings.Replace(p, "is-live=true", "is-live=false", 1)
	}
	if r := launch(t, ep, 180*time.Second, p); r.rc != 0 {
		t.Fatalf("producer exited %d:\n%s", r.rc, tail([]byte(r.output)))
	}
	list := listFragments(t, ep.url, stream)
	if len(list) == 0 {
		t.Fatal("the endpoint lists no fragment after the producer finished")
	}
	return frameHashes(t, decodeToRaw(t, ref)), list
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// TestSrcArchived plays archived time ranges: the whole stream, then a
// range inside it, which starts at a fragment's first (key) frame.
func TestSrcArchived(t *testing.T) {
	ep := startEndpoint(t)
	const stream, frames = "src-archived", 150
	want, list := produce(t, ep, stream, frames)
	if len(list) != frames/15 {
		t.Fatalf("%d fragments, want %d (one per key frame)", len(list), frames/15)
	}
	out := filepath.Join(t.TempDir(), "all.yuv")
	r := launch(t, ep, 120*time.Second, "-m "+consumer(stream, out, "start-time="+rfc3339(list[0].ProducerTimestamp), "end-time="+rfc3339(list[len(list)-1].ProducerTimestamp)))
	if r.rc != 0 {
		t.Fatalf("kvssrc exited %d:\n%s", r.rc, tail([]byte(r.output)))
	}
	sameFrames(t, frameHashes(t, out), want)
	if n := strings.Count(r.output, "kvs-fragment-received"); n != len(list) {
		t.Errorf("%d kvs-fragment-received messages, want %d", n, len(list))
	}

	// Fragments 3 to 6: frames 45 to 104.
	part := filepath.Join(t.TempDir(), "part.yuv")
	r = launch(t, ep, 120*time.Second, consumer(stream, part, "start-time="+rfc3339(list[3].ProducerTimestamp), "end-time="+rfc3339(list[6].ProducerTimestamp), "timestamp-type=producer"))
	if r.rc != 0 {
		t.Fatalf("kvssrc exited %d:\n%s", r.rc, tail([]byte(r.output)))
	}
	sameFrames(t, frameHashes(t, part), want[45:105])

	// A TIME seek to 2.2 s, of the pipeline (matroskademux seeks with the
	// index kvssrc writes) and of kvssrc itself: playback restarts at the
	// fragment holding it (fragment 4, frames 60 on) with the same times.
	for _, how := range []string{"pipeline", "element"} {
		t.Run("seek "+how, func(t *testing.T) {
			seeked := filepath.Join(t.TempDir(), "seek.yuv")
			python := testenv.Tool(t, "/usr/bin/python3", "python3-gi")
			cmd := exec.Command(python, filepath.Join("testdata", "seek.py"),
				strings.Replace(consumer(stream, seeked, "start-time="+rfc3339(list[0].ProducerTimestamp), "end-time="+rfc3339(list[len(list)-1].ProducerTimestamp)), "kvssrc", "kvssrc name=k", 1),
				fmt.Sprint(int64(2200*time.Millisecond)), how)
			cmd.Env = gstEnv(testenv.PluginDir(t), ep)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("seeking: %v\n%s", err, tail(b))
			} else if strings.Contains(string(b), "CRITICAL") || strings.Contains(string(b), "before segment event") {
				t.Errorf("warnings while seeking:\n%s", tail(b))
			}
			sameFrames(t, frameHashes(t, seeked), want[60:])
		})
	}
}

// TestSrcEncrypted plays an end-to-end encrypted stream, live and
// archived, decrypting in-line; with the wrong keys it fails naming the
// cause.
func TestSrcEncrypted(t *testing.T) {
	ep := startEndpoint(t)
	keys := keyFiles(t, t.TempDir())
	const stream, frames = "src-e2ee", 90
	want, list := produce(t, ep, stream, frames, "e2ee-recipients="+keys["alice.pub"]+","+keys["bob.pub"], "e2ee-signing-key="+keys["cam"])
	for _, mode := range []struct{ name, props string }{
		{"live", "start-selector=earliest idle-timeout=3"},
		{"archived", "start-time=" + rfc3339(list[0].ProducerTimestamp) + " end-time=" + rfc3339(list[len(list)-1].ProducerTimestamp)},
	} {
		t.Run(mode.name, func(t *testing.T) {
			for _, who := range []string{"alice", "bob"} {
				out := filepath.Join(t.TempDir(), who+".yuv")
				r := launch(t, ep, 120*time.Second, consumer(stream, out, mode.props, "private-keys="+keys[who], "device-keys="+keys["cam.pub"]))
				if r.rc != 0 {
					t.Fatalf("kvssrc as %s exited %d:\n%s", who, r.rc, tail([]byte(r.output)))
				}
				sameFrames(t, frameHashes(t, out), want)
			}
		})
	}
	t.Run("not a recipient", func(t *testing.T) {
		r := launch(t, ep, 120*time.Second, "-m "+consumer(stream, filepath.Join(t.TempDir(), "eve.yuv"), "start-selector=earliest idle-timeout=3",
			"private-keys="+keys["eve"], "device-keys="+keys["cam.pub"]))
		if r.rc == 0 {
			t.Fatalf("kvssrc with a key that is not a recipient's exited 0:\n%s", tail([]byte(r.output)))
		}
		if !strings.Contains(r.output, "kvs-decrypt-dropped") || !strings.Contains(r.output, "no frame could be decrypted") {
			t.Errorf("no kvs-decrypt-dropped message and error naming the cause:\n%s", tail([]byte(r.output)))
		}
	})
	t.Run("plain stream with keys", func(t *testing.T) {
		produce(t, ep, "src-plain", 30)
		r := launch(t, ep, 120*time.Second, consumer("src-plain", filepath.Join(t.TempDir(), "x.yuv"), "start-selector=earliest idle-timeout=3",
			"private-keys="+keys["alice"], "device-keys="+keys["cam.pub"]))
		if r.rc == 0 || !strings.Contains(r.output, "no KVS-E2EE key track") {
			t.Errorf("kvssrc with keys on a plain stream: rc %d, want an error naming the missing key track:\n%s", r.rc, tail([]byte(r.output)))
		}
	})
}

// TestSrcBadInput: errors name the cause and come within the timeouts.
func TestSrcBadInput(t *testing.T) {
	ep := startEndpoint(t)
	produce(t, ep, "src-bad", 30)
	// The same stream goes on in another resolution: another CodecPrivate.
	if r := launch(t, ep, 60*time.Second, "videotestsrc num-buffers=30 ! video/x-raw,width=640,height=480,framerate=30/1 ! x264enc key-int-max=15 ! h264parse ! "+kvssink("src-bad")); r.rc != 0 {
		t.Fatalf("second producer: %s", r.output)
	}
	for _, tc := range []struct{ name, props, want string }{
		{"unknown fragment", "stream-name=src-bad start-selector=fragment-number fragment-number=12345", "Fragment 12345 was not found"},
		{"codec change", "stream-name=src-bad start-selector=earliest idle-timeout=3", "has another CodecPrivate (resolution or encoder settings changed)"},
		{"missing stream", "stream-name=nosuch", "not found"},
		{"unknown selector", "stream-name=nosuch start-selector=latest", "unknown start selector"},
		{"fragment number", "stream-name=nosuch start-selector=fragment-number fragment-number=12x", "fragment number"},
		{"bad time", "stream-name=nosuch start-time=yesterday end-time=today", "not an RFC 3339 time"},
		{"keys without device", "stream-name=nosuch private-keys=/nonexistent", "private-keys and device-keys go together"},
		{"empty range", "stream-name=nosuch start-time=2020-01-01T00:00:00Z end-time=2020-01-01T00:01:00Z", "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launch(t, ep, 60*time.Second, "kvssrc "+tc.props+" ! fakesink")
			if r.rc == 0 || !strings.Contains(r.output, tc.want) {
				t.Errorf("rc %d, want an error containing %q:\n%s", r.rc, tc.want, tail([]byte(r.output)))
			}
		})
	}
}

// TestSrcIoTCertificate: kvssrc takes kvssink's iot-certificate property.
// The walkthrough's role may put media but not read it, so the reading is
// refused by the policy, which the error names: the request was signed with
// the credentials the IoT endpoint issued for camera 1.
func TestSrcIoTCertificate(t *testing.T) {
	ep, iotEP, devs := iotEndpoint(t)
	r := launch(t, ep, 60*time.Second, "-m videotestsrc num-buffers=30 ! x264enc ! h264parse ! "+kvssink("cam1", iotProperty(iotEP, "", devs["cam1"])))
	if r.rc != 0 {
		t.Fatalf("producer: %s", r.output)
	}
	r = launch(t, ep, 60*time.Second, "-m kvssrc stream-name=cam1 start-selector=earliest idle-timeout=3 "+iotProperty(iotEP, "", devs["cam1"])+" ! fakesink",
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=")
	if !strings.Contains(r.output, "kvs-iot-certificate, certificate-id=(string)"+devs["cam1"].ID) {
		t.Errorf("no kvs-iot-certificate message from kvssrc:\n%s", r.output)
	}
	if r.rc == 0 || !strings.Contains(r.output, "not authorized to perform: kinesisvideo:GetMedia") {
		t.Errorf("rc %d, want GetMedia refused by the role's policy:\n%s", r.rc, tail([]byte(r.output)))
	}
	if r.duration > 20*time.Second {
		t.Errorf("the refusal took %v", r.duration)
	}
}

// TestSrcLatency: live, kvssrc is a live source that reports its latency
// property; archived, it is not live.
func TestSrcLatency(t *testing.T) {
	ep := startEndpoint(t)
	python := testenv.Tool(t, "/usr/bin/python3", "python3-gi")
	for _, tc := range []struct{ props, want string }{
		{"", "True True 3000000000 18446744073709551615"},
		{"latency=1500", "True True 1500000000 18446744073709551615"},
		{"start-time=2026-01-01T00:00:00Z end-time=2026-01-01T01:00:00Z", "True False 0 18446744073709551615"},
	} {
		cmd := exec.Command(python, filepath.Join("testdata", "latency.py"), "kvssrc name=k stream-name=any "+tc.props+" ! fakesink")
		cmd.Env = gstEnv(testenv.PluginDir(t), ep)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tc.want {
			t.Errorf("%q: %v: %q, want %q", tc.props, err, out, tc.want)
		}
	}
}

// TestSrcStartSelectors: every live start selector that names a place in
// the stream starts there (fragment 3 of 10, frames 45 on).
func TestSrcStartSelectors(t *testing.T) {
	ep := startEndpoint(t)
	const stream = "src-selectors"
	want, list := produceAt(t, ep, stream, 150, true)
	for _, sel := range []string{
		"start-selector=fragment-number fragment-number=" + list[3].Number,
		"start-selector=producer-timestamp start-time=" + rfc3339(list[3].ProducerTimestamp),
		"start-selector=server-timestamp start-time=" + rfc3339(list[3].ServerTimestamp),
		"start-selector=continuation-token continuation-token=" + list[2].Number,
	} {
		out := filepath.Join(t.TempDir(), "out.yuv")
		r := launch(t, ep, 120*time.Second, consumer(stream, out, sel, "idle-timeout=3"))
		if r.rc != 0 {
			t.Fatalf("%s: kvssrc exited %d:\n%s", sel, r.rc, tail([]byte(r.output)))
		}
		t.Run(strings.Fields(sel)[0], func(t *testing.T) { sameFrames(t, frameHashes(t, out), want[45:]) })
	}
}

// TestSrcProperties: kvssrc's secrets read back masked, as kvssink's; its
// iot-certificate structure reads back as set; instances are named kvssrcN.
func TestSrcProperties(t *testing.T) {
	python := testenv.Tool(t, "/usr/bin/python3", "python3-gi")
	cmd := exec.Command(python, filepath.Join("testdata", "props.py"))
	cmd.Env = gstEnv(testenv.PluginDir(t), nil)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"*****", "*****", "*****",
		"iot-certificate, endpoint=(string)x.example, cert-path=(string)c.pem, key-path=(string)k.pem, role-aliases=(string)r;", "kvssrc0"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, secret := range []string{"SECRET-KEY-VALUE", "SESSION-TOKEN-VALUE", "EXTERNAL-ID-VALUE"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("%s read back", secret)
		}
	}
}

// TestSrcStreamDeletedMidRead: a live read of a stream that is deleted
// (with awscli) ends with an element error naming the missing stream, not
// with endless reconnections.
func TestSrcStreamDeletedMidRead(t *testing.T) {
	ep := startEndpoint(t)
	const stream = "src-deleted"
	produce(t, ep, stream, 60)
	cons := startGst(t, ep, 120*time.Second, "kvssrc stream-name="+stream+" start-selector=earliest idle-timeout=60 ! fakesink")
	waitFor(t, 30*time.Second, "the first fragment read", func() bool { return strings.Contains(cons.out.String(), "kvs-fragment-received") })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: ep.url, Region: kvslocal.DefaultRegion, Credentials: testCredentials()})
	if err != nil {
		t.Fatal(err)
	}
	info, err := ctl.DescribeStream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	aws := testenv.Tool(t, "aws", "awscli")
	del := exec.CommandContext(ctx, aws, "kinesisvideo", "delete-stream", "--stream-arn", info.ARN, "--endpoint-url", ep.url, "--region", kvslocal.DefaultRegion)
	del.Env = gstEnv(testenv.PluginDir(t), ep)
	if out, err := del.CombinedOutput(); err != nil {
		t.Fatalf("aws kinesisvideo delete-stream: %v\n%s", err, out)
	}
	start := time.Now()
	<-cons.done
	out := cons.out.String()
	if cons.err == nil || !strings.Contains(out, "ResourceNotFoundException") {
		t.Fatalf("kvssrc: %v, want an error naming the missing stream:\n%s", cons.err, tail([]byte(out)))
	}
	t.Logf("ended %v after the deletion", time.Since(start).Round(time.Millisecond))
}
