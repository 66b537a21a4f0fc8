// Package core tests the producer core (pkg/sink) against the local endpoint
// over loopback: no GStreamer.
package core

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

const (
	accessKey = "AKIDCORETEST"
	secretKey = "core-test-secret"
)

func TestMain(m *testing.M) {
	testenv.GuardLoopback()
	os.Exit(m.Run())
}

type frame struct {
	pts  time.Duration
	key  bool
	data []byte
}

// officialFrames returns the 300 frames and the CodecPrivate of the official
// producer's capture, with timestamps relative to its first frame.
func officialFrames(t testing.TB) ([]byte, []frame) {
	t.Helper()
	f, err := os.Open(testenv.Fixture(t, "official-putmedia.mkv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := mkv.NewReader(f)
	var cpd []byte
	var frames []frame
	var base, cluster uint64
	first := true
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			cpd = append([]byte(nil), ev.Header.Tracks[0].CodecPrivate...)
		case mkv.EventClusterStart:
			cluster = ev.Timecode
			if first {
				base, first = cluster, false
			}
		case mkv.EventBlock:
			tc := int64(cluster-base) + int64(ev.Block.RelTimecode)
			frames = append(frames, frame{time.Duration(tc) * time.Millisecond, ev.Block.Keyframe, append([]byte(nil), ev.Block.Data...)})
		}
	}
	if len(frames) != 300 {
		t.Fatalf("fixture has %d frames", len(frames))
	}
	return cpd, frames
}

// startEndpoint starts a local endpoint that accepts the test credentials
// and captures PutMedia bodies; options adjust its configuration.
func startEndpoint(t testing.TB, options ...func(*kvslocal.Config)) (*kvslocal.Server, string) {
	t.Helper()
	c := kvslocal.Config{Dir: t.TempDir(), CaptureBodies: true,
		Credentials: []kvslocal.Credential{{AccessKeyID: accessKey, SecretAccessKey: secretKey}}}
	for _, o := range options {
		o(&c)
	}
	srv, err := kvslocal.New(c)
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, url
}

// withoutCaptures is an endpoint option: PutMedia bodies are not kept.
func withoutCaptures(c *kvslocal.Config) { c.CaptureBodies = false }

func config(url, stream string) sink.Config {
	return sink.Config{
		StreamName: stream, Region: "us-west-2", Endpoint: url,
		Credentials:           aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(accessKey, secretKey, "")),
		RetentionHours:        2,
		AllowCreateStream:     true,
		FragmentAcks:          true,
		AbsoluteFragmentTimes: true,
		KeyFrameFragmentation: true,
		FrameTimecodes:        true,
		RestartOnError:        true,
		ConnectionTimeout:     2 * time.Second,
		CompletionTimeout:     5 * time.Second,
		StopStreamTimeout:     20 * time.Second,
		LoopbackOnly:          true,
		Logger:                slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func stream(t *testing.T, cfg sink.Config, cpd []byte, frames []frame) error {
	t.Helper()
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		return err
	}
	if err := s.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}); err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := s.Put(ctx, sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
			return err
		}
	}
	return s.Finish(ctx)
}

// The official producer's frames go through our core and come back from the
// endpoint byte for byte, in ten fragments.
func TestOfficialFramesRoundTrip(t *testing.T) {
	cpd, frames := officialFrames(t)
	srv, url := startEndpoint(t)
	if err := stream(t, config(url, "roundtrip"), cpd, frames); err != nil {
		t.Fatal(err)
	}
	frags, err := srv.Fragments("roundtrip")
	if err != nil {
		t.Fatal(err)
	}
	if len(frags) != 10 {
		t.Fatalf("endpoint stored %d fragments, want 10", len(frags))
	}
	got := readBack(t, url, "roundtrip")
	if len(got) != len(frames) {
		t.Fatalf("read back %d frames, want %d", len(got), len(frames))
	}
	for i := range frames {
		if !bytes.Equal(got[i].data, frames[i].data) || got[i].key != frames[i].key {
			t.Fatalf("frame %d differs", i)
		}
	}
}

// openGetMedia starts GetMedia on a stream from start.
func openGetMedia(t *testing.T, url, name string, start kvs.StartSelector) io.ReadCloser {
	t.Helper()
	creds := aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(accessKey, secretKey, ""))
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: url, Region: "us-west-2", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	ep, err := ctl.GetDataEndpoint(ctx, name, "GET_MEDIA")
	if err != nil {
		t.Fatal(err)
	}
	body, err := kvs.GetMedia(ctx, kvs.GetMediaConfig{Endpoint: ep, StreamName: name, Region: "us-west-2", Credentials: creds, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// eachEvent reads a whole stream back with GetMedia (EARLIEST) and calls fn
// for every Matroska event.
func eachEvent(t *testing.T, url, name string, fn func(mkv.Event)) {
	t.Helper()
	body := openGetMedia(t, url, name, kvs.StartSelector{Type: "EARLIEST"})
	defer body.Close()
	r := mkv.NewReader(body)
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(ev)
	}
}

// readBack returns the frames of a stream, read back with GetMedia.
func readBack(t *testing.T, url, name string) []frame {
	t.Helper()
	var out []frame
	eachEvent(t, url, name, func(ev mkv.Event) {
		if ev.Kind == mkv.EventBlock {
			out = append(out, frame{key: ev.Block.Keyframe, data: append([]byte(nil), ev.Block.Data...)})
		}
	})
	return out
}

// startSink starts a core streaming H.264 (avc, CodecPrivate cpd) to stream.
func startSink(t *testing.T, cfg sink.Config, cpd []byte) *sink.Sink {
	t.Helper()
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}
	if cpd == nil {
		f = sink.Format{Codec: "h264", StreamFormat: "byte-stream"}
	}
	if err := s.SetFormat(f); err != nil {
		t.Fatal(err)
	}
	return s
}

// put sends frames to s.
func put(t *testing.T, s *sink.Sink, fs []frame) {
	t.Helper()
	for _, f := range fs {
		if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFragmentAcksOff(t *testing.T) {
	cpd, frames := officialFrames(t)
	srv, url := startEndpoint(t)
	cfg := config(url, "noacks")
	cfg.FragmentAcks = false
	if err := stream(t, cfg, cpd, frames[:90]); err != nil {
		t.Fatal(err)
	}
	frags, _ := srv.Fragments("noacks")
	if len(frags) != 3 {
		t.Fatalf("stored %d fragments, want 3", len(frags))
	}
}

func TestWrongSecret(t *testing.T) {
	_, url := startEndpoint(t)
	cfg := config(url, "denied")
	cfg.Credentials = aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(accessKey, "wrong", ""))
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.Start(context.Background())
	if !errors.Is(err, kvs.ErrAccessDenied) {
		t.Fatalf("Start = %v, want ErrAccessDenied", err)
	}
}

func TestDeadEndpointFailsWithinBound(t *testing.T) {
	cfg := config("http://127.0.0.1:9", "dead")
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	err = s.Start(context.Background())
	if err == nil {
		t.Fatal("Start succeeded against a dead endpoint")
	}
	if d := time.Since(start); d > cfg.ConnectionTimeout+cfg.CompletionTimeout+time.Second {
		t.Fatalf("took %v", d)
	}
	t.Logf("error: %v", err)
}
