package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

func TestMain(m *testing.M) {
	testenv.GuardLoopback()
	os.Exit(m.Run())
}

const (
	testKey    = "AKIDKVSGOGETTEST"
	testSecret = "kvsgo-get-test-secret"
	testRegion = "us-west-2"
)

// startLocal starts an in-process local endpoint and points the tool at it
// through the environment, as a user would.
func startLocal(t *testing.T) string {
	t.Helper()
	s, err := kvslocal.New(kvslocal.Config{Dir: t.TempDir(),
		Credentials:         []kvslocal.Credential{{AccessKeyID: testKey, SecretAccessKey: testSecret}},
		GetMediaIdleTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_KINESIS_VIDEO": url, "AWS_ACCESS_KEY_ID": testKey,
		"AWS_SECRET_ACCESS_KEY": testSecret, "AWS_SESSION_TOKEN": "", "AWS_REGION": testRegion, "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull} {
		t.Setenv(k, v)
	}
	return url
}

// putMedia creates stream (if need be) and sends body as one PutMedia session, then
// waits until every fragment is persisted.
func putMedia(t *testing.T, url, stream string, body []byte, start time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	creds := aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(testKey, testSecret, ""))
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: url, Region: testRegion, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	// A second session into the same stream finds it there.
	if _, err := ctl.CreateStream(ctx, kvs.CreateStreamInput{Name: stream, MediaType: "video/h264", RetentionHours: 2}); err != nil &&
		!strings.Contains(err.Error(), "ResourceInUseException") {
		t.Fatal(err)
	}
	ep, err := ctl.GetDataEndpoint(ctx, stream, "PUT_MEDIA")
	if err != nil {
		t.Fatal(err)
	}
	clusters := bytes.Index(body, []byte{0x1f, 0x43, 0xb6, 0x75})
	pm, err := kvs.OpenPutMedia(ctx, kvs.PutMediaConfig{Endpoint: ep, StreamName: stream, Region: testRegion,
		Credentials: creds, AckRequired: true, ProducerStart: start}, body[:clusters])
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Count(body, []byte{0x1f, 0x43, 0xb6, 0x75})
	go func() {
		pm.Write(body[clusters:])
		pm.CloseBody()
	}()
	// The acks end when the endpoint has read the whole body and ended the
	// session, so that a next session into the stream is not refused as a
	// concurrent connection.
	persisted := 0
	for a := range pm.Acks() {
		switch a.EventType {
		case kvs.AckPersisted:
			persisted++
		case kvs.AckErrorEvent:
			t.Fatalf("PutMedia: %+v", a)
		}
	}
	pm.Abort()
	if persisted != want {
		t.Fatalf("%d of %d fragments persisted (%v)", persisted, want, pm.Err())
	}
}

// keys writes a device key and two recipients (x25519, xwing) into dir.
func keys(t *testing.T, dir string) {
	t.Helper()
	for _, k := range []struct{ kind, file string }{{"x25519", "alice"}, {"xwing", "bob"}, {"ed25519", "cam"}, {"x25519", "eve"}} {
		if err := keygen([]string{"-kind", k.kind, "-o", filepath.Join(dir, k.file)}, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
}

// The official producer's PutMedia body, encrypted for alice and bob as
// kvssink would send it, goes into the local endpoint; "get -key" reads it
// back through GetMedia, decrypted and joined, frame for frame what plain
// "get" makes of the unencrypted body, whatever the start selector.
func TestGetDecrypts(t *testing.T) {
	plain := testenv.ReadFixture(t, "official-putmedia.mkv")
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	keys(t, dir)
	if err := encrypt([]string{"-stream", "cam-1", "-signing-key", p("cam"), "-recipients", p("alice.pub") + "," + p("bob.pub"),
		"-i", testenv.Fixture(t, "official-putmedia.mkv"), "-o", p("enc.mkv")}); err != nil {
		t.Fatal(err)
	}
	enc, _ := os.ReadFile(p("enc.mkv"))
	url := startLocal(t)
	start := time.Unix(1795393128, 941e6)
	putMedia(t, url, "cam-1", enc, start)
	putMedia(t, url, "plain-1", plain, start)
	ctx := context.Background()

	var log bytes.Buffer
	if err := get(ctx, []string{"-stream", "plain-1", "-o", p("plain.mkv")}, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	want := clusters(t, p("plain.mkv"))
	if !strings.Contains(log.String(), "10 fragments, 300 frames") {
		t.Fatalf("plain get: %s", log.String())
	}

	for _, key := range []string{"alice", "bob"} {
		log.Reset()
		out := p(key + ".mkv")
		if err := get(ctx, []string{"-stream", "cam-1", "-start", "EARLIEST", "-key", p(key), "-device", p("cam.pub"), "-o", out}, &log); err != nil {
			t.Fatalf("%s: %v\n%s", key, err, log.String())
		}
		if got := clusters(t, out); !bytes.Equal(got, want) {
			t.Fatalf("%s: decrypted stream differs from the plain one\n%s", key, log.String())
		}
		for _, s := range []string{"300 of 300 frames decrypted", "10/10 key bundles accepted", "AES_256_GCM_SHA512_128",
			"10 fragments, recipients", pubID(t, p(key+".pub")) + " (you)", "wrote " + out + ": 10 fragments, 300 frames",
			"MB, 10 fragments received"} {
			if !strings.Contains(log.String(), s) {
				t.Errorf("%s: report lacks %q:\n%s", key, s, log.String())
			}
		}
		if key == "alice" {
			mkvinfoHasNoKeyTrack(t, out)
		}
	}

	// Another start selector: from the producer timestamp of the 4th
	// fragment on, the key bundle of that fragment opens it at once.
	log.Reset()
	ts := time.UnixMilli(int64(fragmentTimecodes(t, plain)[3])).UTC().Format(time.RFC3339Nano)
	if err := get(ctx, []string{"-stream", "cam-1", "-start", "PRODUCER_TIMESTAMP", "-timestamp", ts,
		"-key", p("alice"), "-device", p("cam.pub"), "-o", p("late.mkv")}, &log); err != nil {
		t.Fatalf("late join: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "7 fragments, 210 of 210 frames decrypted") || len(fragmentTimecodes(t, readFile(t, p("late.mkv")))) != 7 {
		t.Fatalf("late join:\n%s", log.String())
	}

	// -raw with -key: decrypted, one segment per fragment.
	log.Reset()
	if err := get(ctx, []string{"-stream", "cam-1", "-raw", "-key", p("alice"), "-device", p("cam.pub"), "-o", p("raw.mkv")}, &log); err != nil {
		t.Fatalf("raw: %v\n%s", err, log.String())
	}
	if n := segments(t, p("raw.mkv")); n != 10 {
		t.Fatalf("raw: %d segments, want 10", n)
	}
}

// What "get -key" says, and that it exits non-zero, when nothing decrypts.
func TestGetNothingDecrypts(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	keys(t, dir)
	if err := encrypt([]string{"-stream", "cam-1", "-signing-key", p("cam"), "-recipients", p("alice.pub"),
		"-i", testenv.Fixture(t, "official-putmedia.mkv"), "-o", p("enc.mkv")}); err != nil {
		t.Fatal(err)
	}
	enc, _ := os.ReadFile(p("enc.mkv"))
	url := startLocal(t)
	start := time.Unix(1795393128, 941e6)
	putMedia(t, url, "cam-1", enc, start)
	putMedia(t, url, "plain-1", testenv.ReadFixture(t, "official-putmedia.mkv"), start)
	if err := keygen([]string{"-kind", "ed25519", "-o", p("other-cam")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, stream, key, device string
		cause                     error
		says                      []string
	}{
		{"not a recipient", "cam-1", "eve", "cam.pub", e2ee.ErrNotRecipient,
			[]string{"0 of 300 frames decrypted", "10× e2ee: not a recipient", "is a recipient of this stream", pubID(t, p("alice.pub"))}},
		{"unpinned device", "cam-1", "alice", "other-cam.pub", e2ee.ErrBundleSignature,
			[]string{"10 key bundles not signed by a -device key", "pin the camera's public key"}},
		{"plain stream", "plain-1", "alice", "cam.pub", mkvstream.ErrNotEncrypted,
			[]string{"not end-to-end encrypted"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			out := p(c.name + ".mkv")
			err := get(context.Background(), []string{"-stream", c.stream, "-key", p(c.key), "-device", p(c.device), "-o", out}, &log)
			if !errors.Is(err, c.cause) {
				t.Fatalf("err = %v, want %v\n%s", err, c.cause, log.String())
			}
			all := log.String() + err.Error()
			for _, s := range c.says {
				if !strings.Contains(all, s) {
					t.Errorf("lacks %q:\n%s", s, all)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("an output without frames was left behind: %v", err)
			}
		})
	}
	if err := get(context.Background(), []string{"-stream", "cam-1", "-key", p("alice")}, io.Discard); err == nil {
		t.Fatal("-key without -device accepted")
	}
}

// "kvsgo decrypt" takes both shapes of capture: a GetMedia response (one
// segment per fragment, "get -raw") and a PutMedia body (one segment).
func TestDecryptCaptures(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	keys(t, dir)
	plain := testenv.ReadFixture(t, "official-putmedia.mkv")
	if err := encrypt([]string{"-stream", "cam-1", "-signing-key", p("cam"), "-recipients", p("alice.pub") + "," + p("bob.pub"),
		"-i", testenv.Fixture(t, "official-putmedia.mkv"), "-o", p("putmedia-body.mkv")}); err != nil {
		t.Fatal(err)
	}
	enc, _ := os.ReadFile(p("putmedia-body.mkv"))
	url := startLocal(t)
	putMedia(t, url, "cam-1", enc, time.Unix(1795393128, 941e6))
	if err := get(context.Background(), []string{"-stream", "cam-1", "-raw", "-o", p("getmedia.mkv")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if n := segments(t, p("getmedia.mkv")); n != 10 {
		t.Fatalf("GetMedia capture has %d segments, want 10", n)
	}
	var want bytes.Buffer
	if _, err := join(&want, bytes.NewReader(plain)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p("want.mkv"), want.Bytes(), 0o644)
	for _, in := range []string{"putmedia-body.mkv", "getmedia.mkv"} {
		var log bytes.Buffer
		out := p(in + ".plain.mkv")
		if err := decrypt([]string{"-stream", "cam-1", "-device", p("cam.pub"), "-key", p("bob"), "-i", p(in), "-o", out}, &log); err != nil {
			t.Fatalf("%s: %v\n%s", in, err, log.String())
		}
		if !bytes.Equal(clusters(t, out), clusters(t, p("want.mkv"))) {
			t.Fatalf("%s: decrypted capture differs from the plain body\n%s", in, log.String())
		}
		if !strings.Contains(log.String(), "300 of 300 frames decrypted") {
			t.Errorf("%s: %s", in, log.String())
		}
	}
}

// clusters returns a file from its first Cluster on (headers name their
// writing application, which differs).
func clusters(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte{0x1f, 0x43, 0xb6, 0x75})
	if i < 0 {
		t.Fatalf("%s has no Cluster", path)
	}
	return b[i:]
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func segments(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	r := mkv.NewReader(f)
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == mkv.EventSegmentStart {
			n++
		}
	}
}

func fragmentTimecodes(t *testing.T, body []byte) []uint64 {
	t.Helper()
	var tcs []uint64
	r := mkv.NewReader(bytes.NewReader(body))
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return tcs
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == mkv.EventClusterStart {
			tcs = append(tcs, ev.Timecode)
		}
	}
}

func readPub(t *testing.T, path string) *e2ee.PublicKey {
	t.Helper()
	rs, err := e2ee.LoadRecipients(path)
	if err != nil || len(rs) != 1 {
		t.Fatalf("%s: %v", path, err)
	}
	return rs[0]
}

func pubID(t *testing.T, path string) string { return readPub(t, path).ID().String() }

// mkvinfoHasNoKeyTrack checks with mkvinfo that the decrypted file is plain
// H.264 without the key track, and with ffprobe that every frame decodes.
func mkvinfoHasNoKeyTrack(t *testing.T, path string) {
	mkvinfo := testenv.Tool(t, "mkvinfo", "mkvtoolnix")
	b, err := exec.Command(mkvinfo, path).CombinedOutput()
	if err != nil || strings.Contains(string(b), e2ee.KeyTrackCodecID) || !strings.Contains(string(b), "V_MPEG4/ISO/AVC") {
		t.Fatalf("mkvinfo: %v\n%s", err, b)
	}
	ffprobe := testenv.Tool(t, "ffprobe", "ffmpeg")
	b, err = exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil || strings.TrimSpace(string(b)) != "300" {
		t.Fatalf("ffprobe: %q %v", b, err)
	}
}

// Without credentials, get names what a user of the tool can set: the
// environment and the AWS default chain, not the element's properties.
func TestGetWithoutCredentials(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	err := get(context.Background(), []string{"-stream", "cam-1", "-endpoint", "http://127.0.0.1:9", "-o", filepath.Join(dir, "out.mkv")}, io.Discard)
	if err == nil {
		t.Fatal("get succeeded without credentials")
	}
	msg := err.Error()
	for _, want := range []string{"no AWS credentials", "AWS_ACCESS_KEY_ID", "~/.aws/credentials"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	for _, notOurs := range []string{"iot-certificate", "propert", "credential-path"} {
		if strings.Contains(msg, notOurs) {
			t.Errorf("error names %q, which the tool does not have: %s", notOurs, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.mkv")); err == nil {
		t.Error("an output file was written")
	}
}
