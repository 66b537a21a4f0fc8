package core

import (
	"bytes"
	"context"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/codec/h264"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// Annex-B input whose parameter sets change mid-stream: the fragment after
// the change starts a new PutMedia session whose track carries the new
// CodecPrivate, and both are stored.
func TestParameterSetChange(t *testing.T) {
	cpd, frames := officialFrames(t)
	cfg, err := h264.ParseConfig(cpd)
	if err != nil {
		t.Fatal(err)
	}
	sps, pps := cfg.SPS[0], cfg.PPS[0]
	pps2 := append(append([]byte(nil), pps...), 0x80) // another PPS (trailing bits differ)
	annexB := func(f frame, ps ...[]byte) []byte {
		var out []byte
		if f.key {
			for _, p := range ps {
				out = append(append(out, 0, 0, 0, 1), p...)
			}
		}
		h264.SplitAVCC(f.data, 4, func(n []byte) error {
			if t := n[0] & 0x1F; t != h264.NALSPS && t != h264.NALPPS {
				out = append(append(out, 0, 0, 0, 1), n...)
			}
			return nil
		})
		return out
	}
	_, url := startEndpoint(t)
	s := startSink(t, config(url, "paramsets"), nil)
	ctx := context.Background()
	for i, f := range frames[:60] {
		p := pps
		if i >= 30 {
			p = pps2
		}
		if err := s.Put(ctx, sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: annexB(f, sps, p)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}

	var cpds [][]byte
	eachEvent(t, url, "paramsets", func(ev mkv.Event) {
		if ev.Kind == mkv.EventSegmentStart {
			cpds = append(cpds, ev.Header.Tracks[0].CodecPrivate)
		}
	})
	if len(cpds) != 2 || !bytes.Equal(cpds[0], cpd) || bytes.Equal(cpds[0], cpds[1]) {
		t.Fatalf("fragments' CodecPrivate: %x", cpds)
	}
	want, _ := h264.BuildConfig([][]byte{sps}, [][]byte{pps2})
	if !bytes.Equal(cpds[1], want) {
		t.Fatalf("second CodecPrivate %x, want %x", cpds[1], want)
	}
}
