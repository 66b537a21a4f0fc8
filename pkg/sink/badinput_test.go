package sink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/fragment"
)

// Bad frames are errors that name the frame's timestamp and the reason;
// nothing of them reaches a fragment.
func TestBadFrames(t *testing.T) {
	newSink := func(t *testing.T, f Format) *Sink {
		t.Helper()
		s, err := New(Config{StreamName: "s", Endpoint: "http://127.0.0.1:1", Region: "us-west-2", Credentials: nopCreds{},
			KeyFrameFragmentation: true, FrameTimecodes: true, AbsoluteFragmentTimes: true, Clock: clock.NewFake(time.Unix(1_800_000_000, 0))})
		if err != nil {
			t.Fatal(err)
		}
		s.runCtx = context.Background() // as if started, without a network
		if err := s.SetFormat(f); err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()

	s := newSink(t, Format{Codec: "h264", StreamFormat: "byte-stream"})
	err := s.Put(ctx, Frame{PTS: 1500 * time.Millisecond, DTS: NoTime, Keyframe: true, Data: []byte{1, 2, 3, 4, 5}})
	if err == nil || !strings.Contains(err.Error(), "pts 1.5s") || !strings.Contains(err.Error(), "start code") {
		t.Fatalf("garbage Annex-B: %v", err)
	}
	if len(s.entries) != 0 {
		t.Fatal("a fragment was started from a bad frame")
	}

	s = newSink(t, Format{Codec: "aac", StreamFormat: "raw", CodecData: []byte{0x11, 0x90}, Rate: 48000, Channels: 2})
	err = s.Put(ctx, Frame{PTS: 2 * time.Second, DTS: NoTime, Keyframe: true, Data: make([]byte, fragment.MaxFrameSize+1)})
	if !errors.Is(err, fragment.ErrFrameTooBig) || !strings.Contains(err.Error(), "pts") {
		t.Fatalf("oversized frame: %v", err)
	}
}

type nopCreds struct{}

func (nopCreds) Retrieve(context.Context) (aws.Credentials, error) { return aws.Credentials{}, nil }
