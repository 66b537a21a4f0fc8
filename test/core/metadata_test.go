package core

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// Fragment metadata reaches the service before the cluster it belongs to:
// a one-off tag on the next fragment only, a persistent one on every
// fragment until cleared; the service's limits are errors.
func TestFragmentMetadata(t *testing.T) {
	cpd, frames := officialFrames(t)
	_, url := startEndpoint(t)
	s := startSink(t, config(url, "meta"), cpd)
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
	put(t, s, frames[:30])
	put(t, s, frames[30:60])
	must(s.PutMetadata("camera", "", true)) // cleared before the third fragment
	put(t, s, frames[60:90])
	must(s.Finish(context.Background()))

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
	var out []string
	eachEvent(t, url, name, func(ev mkv.Event) {
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
	})
	return out
}
