package mkvstream

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// rewriteHeads rewrites every segment head of an encrypted stream with mod
// (as storage could) and puts extra after each head; clusters and blocks
// stay as they are.
func rewriteHeads(t *testing.T, in []byte, mod func(h *mkv.SegmentHeader), extra []byte) []byte {
	t.Helper()
	rd := mkv.NewReader(bytes.NewReader(in))
	var out []byte
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			h := ev.Header
			for i := range h.Tracks {
				h.Tracks[i].CodecPrivate = bytes.Clone(h.Tracks[i].CodecPrivate)
			}
			mod(h)
			out = mkv.AppendHeader(out, header(h, h.Tracks, h.WritingApp))
			out = append(out, extra...)
		case mkv.EventTags:
			out = append(out, ev.TagsRaw...)
		case mkv.EventClusterStart:
			out = mkv.AppendClusterStart(out, ev.Timecode)
		case mkv.EventBlock:
			out = mkv.AppendSimpleBlock(out, ev.Block.Track, ev.Block.RelTimecode, ev.Block.Flags|blockFlags, ev.Block.Data)
		}
	}
}

// blockFlags are set on every block by rewriteHeads (tests set it).
var blockFlags byte

// Every input to decoding and presentation in the segment head is signed
// by the camera: storage that rewrites one gets no frame out; a head
// re-encoded with the same values decrypts; fields that are not signed
// (Title, SegmentUID, MuxingApp) and Tags never reach the output.
func TestHeadIsAuthenticated(t *testing.T) {
	keys(t)
	plain := testenv.ReadFixture(t, "official-putmedia.mkv")
	encd := encrypt(t, plain, "cam-1", device)
	video := func(h *mkv.SegmentHeader) *mkv.Track { return &h.Tracks[0] }
	for _, c := range []struct {
		name string
		mod  func(h *mkv.SegmentHeader)
	}{
		{"TimecodeScale doubled", func(h *mkv.SegmentHeader) { h.TimecodeScale *= 2 }},
		{"CodecPrivate altered", func(h *mkv.SegmentHeader) { video(h).CodecPrivate[len(video(h).CodecPrivate)-1] ^= 1 }},
		{"CodecPrivate removed", func(h *mkv.SegmentHeader) { video(h).CodecPrivate = nil }},
		{"CodecID changed", func(h *mkv.SegmentHeader) { video(h).CodecID = "V_MPEGH/ISO/HEVC" }},
		{"track type changed", func(h *mkv.SegmentHeader) { video(h).Type = mkv.TrackTypeAudio }},
		{"track renumbered", func(h *mkv.SegmentHeader) { video(h).Number = 3 }},
		{"size changed", func(h *mkv.SegmentHeader) { video(h).PixelWidth *= 2 }},
		{"default duration added", func(h *mkv.SegmentHeader) { video(h).DefaultDuration = 66_666_666 }},
		{"track added", func(h *mkv.SegmentHeader) {
			h.Tracks = append(h.Tracks, mkv.Track{Number: 4, UID: 4, Type: mkv.TrackTypeAudio, CodecID: "A_AAC", SamplingFrequency: 8000, Channels: 1})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := rewriteHeads(t, encd, c.mod, nil)
			var out bytes.Buffer
			rep, err := Decrypt(&out, bytes.NewReader(in), cfg("cam-1", alice), Options{})
			if !errors.Is(err, ErrNothingDecrypted) || !errors.Is(err, e2ee.ErrHeadMismatch) || rep.Opened != 0 || rep.Counts[e2ee.ErrHeadMismatch] != 300 {
				t.Fatalf("%v; %d of %d opened, causes %v", err, rep.Opened, rep.Frames, rep.Counts)
			}
			if out.Len() != 0 {
				t.Fatalf("%d bytes written for a stream whose frames all failed", out.Len())
			}
			if _, err := Decrypt(io.Discard, bytes.NewReader(in), cfg("cam-1", alice), Options{Strict: true}); !errors.Is(err, e2ee.ErrHeadMismatch) {
				t.Fatalf("strict: %v", err)
			}
		})
	}
	t.Run("unsigned block flags", func(t *testing.T) {
		blockFlags = mkv.FlagInvisible | mkv.FlagDiscardable
		in := rewriteHeads(t, encd, func(*mkv.SegmentHeader) {}, nil)
		blockFlags = 0
		var out bytes.Buffer
		if rep, err := Decrypt(&out, bytes.NewReader(in), cfg("cam-1", alice), Options{Strict: true}); err != nil || rep.Opened != 300 {
			t.Fatalf("%v %+v", err, rep)
		}
		rd := mkv.NewReader(bytes.NewReader(out.Bytes()))
		for {
			ev, err := rd.NextEvent()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind == mkv.EventBlock && ev.Block.Flags&^mkv.FlagKeyframe != 0 {
				t.Fatalf("block flags %#x written", ev.Block.Flags)
			}
		}
	})
	t.Run("unsigned fields and injected tags", func(t *testing.T) {
		injected := mkv.AppendTags(nil, []mkv.SimpleTag{{Name: "TITLE", Value: "forged"}, {Name: mkv.TagFragmentNumber, Value: "1"}})
		in := rewriteHeads(t, encd, func(h *mkv.SegmentHeader) {
			h.Title, h.MuxingApp, h.SegmentUID = "forged title", "forged muxer", bytes.Repeat([]byte{7}, 16)
		}, injected)
		var out bytes.Buffer
		rep, err := Decrypt(&out, bytes.NewReader(in), cfg("cam-1", alice), Options{Strict: true})
		if err != nil || rep.Opened != 300 || rep.Counts[ErrTagsDropped] != 1 || !strings.Contains(rep.First[ErrTagsDropped].Error(), "TITLE") {
			t.Fatalf("%v; %d opened, causes %v", err, rep.Opened, rep.Counts)
		}
		if bytes.Contains(out.Bytes(), []byte("forged")) || bytes.Contains(out.Bytes(), mkv.AppendID(nil, mkv.IDTags)) {
			t.Fatal("an unsigned field or tag reached the output")
		}
		trP, clP, blP := summary(t, plain)
		trD, clD, blD := summary(t, out.Bytes())
		if len(trD) != len(trP) || len(clD) != len(clP) || len(blD) != len(blP) {
			t.Fatalf("decrypted %v %d %d", trD, len(clD), len(blD))
		}
	})
}

// A producer whose segment head changes (a new CodecPrivate) starts a new
// epoch, so both heads are signed.
func TestNewHeadNewEpoch(t *testing.T) {
	keys(t)
	var plain []byte
	for i, cpd := range [][]byte{{1, 2, 3}, {4, 5, 6}} {
		h := &mkv.Header{Tracks: []mkv.Track{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: cpd, PixelWidth: 2, PixelHeight: 2}}}
		plain = mkv.AppendHeader(plain, h)
		plain = mkv.AppendClusterStart(plain, uint64(1000*(i+1)))
		plain = mkv.AppendSimpleBlock(plain, 1, 0, mkv.FlagKeyframe, []byte("frame"))
	}
	encd := encrypt(t, plain, "cam-1", device)
	rep, err := Decrypt(io.Discard, bytes.NewReader(encd), cfg("cam-1", alice), Options{Strict: true})
	if err != nil || rep.Opened != 2 || rep.BundlesAccepted != 2 {
		t.Fatalf("%v %+v", err, rep)
	}
	b1, b2 := bundles(t, encd)
	if len(b1) == 0 || bytes.Equal(b1, b2) {
		t.Fatal("one epoch for two segment heads")
	}
}

// bundles returns the first two key-track blocks of a stream.
func bundles(t *testing.T, b []byte) (first, second []byte) {
	rd := mkv.NewReader(bytes.NewReader(b))
	var key uint64
	for {
		ev, err := rd.NextEvent()
		if err != nil {
			return
		}
		switch {
		case ev.Kind == mkv.EventSegmentStart:
			key, _ = keyTrack(ev.Header)
		case ev.Kind == mkv.EventBlock && ev.Block.Track == key && first == nil:
			first = bytes.Clone(ev.Block.Data)
		case ev.Kind == mkv.EventBlock && ev.Block.Track == key:
			second = bytes.Clone(ev.Block.Data)
			return
		}
	}
}
