package core

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// Fragment metadata reaches the service before the cluster it belongs to:
// a one-off tag on the next fragment only, a persistent one on every
// fragment until cleared; the service's limits are errors.
func TestFragmentMetadata(t *testing.T) {
	cpd, frames := officialFrames(t)
	_, url := startEndpoint(t)
	s, err := sink.New(config(url, "meta"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ name, value string }{{"AWS_X", "v"}, {"", "v"}, {strings.Repeat("n", 129), "v"}, {"n", strings.Repeat("v", 257)}} {
		if err := s.PutMetadata(bad.name, bad.value, false); !errors.Is(err, sink.ErrMetadata) {
			t.Errorf("PutMetadata(%.10q, %.10q) = %v, want ErrMetadata", bad.name, bad.value, err)
		}
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutMetadata("once", "1", false))
	must(s.PutMetadata("camera", "lobby", true))
	put := func(fs []frame) {
		for _, f := range fs {
			must(s.Put(ctx, sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}))
		}
	}
	put(frames[:30])
	put(frames[30:60])
	must(s.PutMetadata("camera", "", true)) // cleared before the third fragment
	put(frames[60:90])
	must(s.Finish(ctx))

	got := producerTags(t, url, "meta")
	want := []string{"camera=lobby once=1", "camera=lobby", ""}
	if len(got) != 3 {
		t.Fatalf("%d fragments", len(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("fragment %d carries %q, want %q", i, got[i], want[i])
		}
	}
	for i := 0; i < sink.MaxMetadataPerFragment; i++ {
		if err := s.PutMetadata("k"+string(rune('a'+i)), "v", false); err != nil {
			t.Fatalf("tag %d: %v", i+1, err)
		}
	}
	if err := s.PutMetadata("eleventh", "v", false); !errors.Is(err, sink.ErrMetadata) {
		t.Fatalf("11th tag: %v", err)
	}
}

// producerTags returns, per fragment read back, the producer's tags as
// "name=value" joined by spaces.
func producerTags(t *testing.T, url, name string) []string {
	creds := aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(accessKey, secretKey, ""))
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: url, Region: "us-west-2", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := ctl.GetDataEndpoint(ctx, name, "GET_MEDIA")
	if err != nil {
		t.Fatal(err)
	}
	body, err := kvs.GetMedia(ctx, kvs.GetMediaConfig{Endpoint: ep, StreamName: name, Region: "us-west-2", Credentials: creds, Start: kvs.StartSelector{Type: "EARLIEST"}})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	r := mkv.NewReader(body)
	var out []string
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			out = append(out, "")
		case mkv.EventTags:
			for _, tg := range ev.Tags {
				if strings.HasPrefix(tg.Name, "AWS_") {
					continue
				}
				cur := &out[len(out)-1]
				*cur = strings.TrimSpace(*cur + " " + tg.Name + "=" + tg.Value)
			}
		}
	}
}
