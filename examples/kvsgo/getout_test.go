package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// fragments is a GetMedia-like response: one segment per cluster timecode,
// two frames each.
func fragments(tcs ...uint64) []byte {
	var b []byte
	for i, tc := range tcs {
		b = mkv.AppendHeader(b, &mkv.Header{Tracks: []mkv.Track{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_TEST", PixelWidth: 2, PixelHeight: 2}}})
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: mkv.TagFragmentNumber, Value: "9100" + string(rune('0'+i))}})
		b = mkv.AppendClusterStart(b, tc)
		b = mkv.AppendSimpleBlock(b, 1, 0, mkv.FlagKeyframe, []byte("k"))
		b = mkv.AppendSimpleBlock(b, 1, 33, 0, []byte("d"))
	}
	return b
}

// blockTimes lists every block's absolute timestamp in a joined file.
func blockTimes(t *testing.T, b []byte) []int64 {
	t.Helper()
	var out []int64
	var tc uint64
	r := mkv.NewReader(bytes.NewReader(b))
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventClusterStart:
			tc = ev.Timecode
		case mkv.EventBlock:
			out = append(out, int64(tc)+int64(ev.Block.RelTimecode))
		}
	}
}

// Fragments whose timestamps do not go forward (equal or decreasing, as the
// service may return them) stop the join with an error naming the fragment
// and suggesting -raw; what was written keeps increasing timestamps. They
// used to be joined into a file whose timestamps go back, with exit 0.
func TestJoinRefusesTimestampsGoingBack(t *testing.T) {
	for name, tcs := range map[string][]uint64{
		"equal":               {1000, 2000, 2000},
		"decreasing":          {1000, 2000, 1500},
		"inside the previous": {1000, 2000, 2020},
		"before the first":    {1000, 2000, 500},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			st, err := join(&out, bytes.NewReader(fragments(tcs...)))
			var be *backwardsError
			if !errors.As(err, &be) || be.fragment != 3 || be.number != "91002" || !strings.Contains(err.Error(), "fragment 3 (91002)") ||
				!strings.Contains(err.Error(), "-raw") || st.clusters != 3 {
				t.Fatalf("%v (%+v)", err, st)
			}
			ts := blockTimes(t, out.Bytes())
			if len(ts) != 4 {
				t.Fatalf("%d frames written, want the 4 of the first two fragments", len(ts))
			}
			for i := 1; i < len(ts); i++ {
				if ts[i] <= ts[i-1] {
					t.Fatalf("timestamps %v go back", ts)
				}
			}
		})
	}
	if _, err := join(io.Discard, bytes.NewReader(fragments(1000, 2000, 3000))); err != nil {
		t.Fatal(err)
	}
}

// createStream creates an empty stream on the local endpoint.
func createStream(t *testing.T, url, stream string) {
	t.Helper()
	creds := aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(testKey, testSecret, ""))
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: url, Region: testRegion, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.CreateStream(context.Background(), kvs.CreateStreamInput{Name: stream, MediaType: "video/h264", RetentionHours: 2}); err != nil {
		t.Fatal(err)
	}
}

func noFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s was written (%v)", path, err)
	}
}

// An empty range writes no file and says so (it used to write a file of a
// header only, which no player opens); an encrypted stream read without
// -key says that it is encrypted instead of writing an undecodable file;
// fragments that go back in time stop the join, naming the fragment.
func TestGetOutputs(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	keys(t, dir)
	url := startLocal(t)
	ctx := context.Background()
	plain := testenv.ReadFixture(t, "official-putmedia.mkv")
	start := time.Unix(1795393128, 941e6)

	createStream(t, url, "empty")
	putMedia(t, url, "cam", plain, start)
	for _, args := range [][]string{
		{"-stream", "empty"},
		{"-stream", "empty", "-raw"},
		{"-stream", "cam", "-start", "PRODUCER_TIMESTAMP", "-timestamp", start.Add(time.Hour).Format(time.RFC3339)},
	} {
		var log bytes.Buffer
		err := get(ctx, append(args, "-o", p("empty.mkv")), &log)
		if !errors.Is(err, errNoFragments) || !strings.Contains(err.Error(), "nothing written") {
			t.Fatalf("%v: %v\n%s", args, err, log.String())
		}
		noFile(t, p("empty.mkv"))
	}

	if err := encrypt([]string{"-stream", "enc", "-signing-key", p("cam"), "-recipients", p("alice.pub"),
		"-i", testenv.Fixture(t, "official-putmedia.mkv"), "-o", p("enc.mkv")}); err != nil {
		t.Fatal(err)
	}
	putMedia(t, url, "enc", readFile(t, p("enc.mkv")), start)
	var log bytes.Buffer
	err := get(ctx, []string{"-stream", "enc", "-o", p("enc-out.mkv")}, &log)
	if !errors.Is(err, errEncrypted) || !strings.Contains(err.Error(), "-key") {
		t.Fatalf("encrypted without -key: %v\n%s", err, log.String())
	}
	noFile(t, p("enc-out.mkv"))
	if err := get(ctx, []string{"-stream", "enc", "-raw", "-o", p("enc-raw.mkv")}, &log); err != nil {
		t.Fatalf("-raw of an encrypted stream: %v", err)
	}

	// The same body sent twice: the second session's fragments have the
	// first's timecodes.
	putMedia(t, url, "twice", plain, start)
	putMedia(t, url, "twice", plain, start)
	log.Reset()
	err = get(ctx, []string{"-stream", "twice", "-o", p("twice.mkv")}, &log)
	var be *backwardsError
	if !errors.As(err, &be) || be.fragment != 11 || be.number == "" || !strings.Contains(err.Error(), "-raw") {
		t.Fatalf("twice: %v\n%s", err, log.String())
	}
	if n := len(blockTimes(t, readFile(t, p("twice.mkv")))); n != 300 {
		t.Fatalf("twice: %d frames kept, want the 300 before fragment 11", n)
	}
	if err := get(ctx, []string{"-stream", "twice", "-raw", "-o", p("twice-raw.mkv")}, &log); err != nil || segments(t, p("twice-raw.mkv")) != 20 {
		t.Fatalf("twice -raw: %v", err)
	}
}

// -ca-cert, KVSSINK_CA_CERT_PATH and AWS_CA_BUNDLE name the CA of a TLS
// endpoint (only SSL_CERT_FILE used to reach it).
func TestGetCACert(t *testing.T) {
	dir := t.TempDir()
	ca, err := kvslocal.NewTestCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := kvslocal.New(kvslocal.Config{Dir: filepath.Join(dir, "data"), TLS: ca.TLS(),
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
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "SSL_CERT_FILE": os.DevNull, "SSL_CERT_DIR": dir,
		"KVSSINK_CA_CERT_PATH": "", "AWS_CA_BUNDLE": ""} {
		t.Setenv(k, v)
	}
	creds := aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(testKey, testSecret, ""))
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: url, Region: testRegion, Credentials: creds, HTTPClient: mustClient(t, ca.CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.CreateStream(context.Background(), kvs.CreateStreamInput{Name: "tls", MediaType: "video/h264", RetentionHours: 2}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.mkv")
	var log bytes.Buffer
	// Without a CA the endpoint is not trusted.
	if err := get(context.Background(), []string{"-stream", "tls", "-o", out}, &log); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("no CA: %v", err)
	}
	for _, c := range []struct{ flag, env string }{{"-ca-cert", ""}, {"", "KVSSINK_CA_CERT_PATH"}, {"", "AWS_CA_BUNDLE"}} {
		args := []string{"-stream", "tls", "-o", out}
		if c.flag != "" {
			args = append(args, c.flag, ca.CAFile)
		} else {
			t.Setenv(c.env, ca.CAFile)
		}
		// The stream is empty: reaching it is an empty range, not a TLS error.
		if err := get(context.Background(), args, &log); !errors.Is(err, errNoFragments) {
			t.Fatalf("%s%s: %v", c.flag, c.env, err)
		}
		if c.env != "" {
			t.Setenv(c.env, "")
		}
	}
	if err := get(context.Background(), []string{"-stream", "tls", "-ca-cert", filepath.Join(dir, "missing.pem"), "-o", out}, &log); err == nil || !strings.Contains(err.Error(), "-ca-cert") {
		t.Fatalf("missing CA file: %v", err)
	}
}

func mustClient(t *testing.T, ca string) *http.Client {
	t.Helper()
	c, err := netClient(ca, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return c.HTTP()
}

// GetMedia responses recorded from the service with equal and decreasing
// fragment timecodes: the joiner stops at the fragment that goes back,
// names it, and keeps what came before it.
func TestJoinRecordedResponsesGoingBack(t *testing.T) {
	for _, file := range []string{"kvs-getmedia-equal-timecodes.mkv", "kvs-getmedia-decreasing-timecodes.mkv"} {
		t.Run(file, func(t *testing.T) {
			var out bytes.Buffer
			st, err := join(&out, bytes.NewReader(testenv.ReadFixture(t, file)))
			var be *backwardsError
			if !errors.As(err, &be) || be.fragment != 2 || !strings.Contains(err.Error(), "-raw") || st.clusters != 2 {
				t.Fatalf("%v (%+v)", err, st)
			}
			ts := blockTimes(t, out.Bytes())
			if len(ts) == 0 {
				t.Fatal("the fragment before the one going back was not kept")
			}
			for i := 1; i < len(ts); i++ {
				if ts[i] <= ts[i-1] {
					t.Fatalf("timestamps go back in the output: %v", ts)
				}
			}
		})
	}
}
