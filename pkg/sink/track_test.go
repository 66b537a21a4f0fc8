package sink

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/codec/h264"
	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/fragment"
	"github.com/kvsgo/kvsgo/test/testenv"
)

func TestTrackFor(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	avcC := fx[0xE9 : 0xE9+0x2C]
	cases := []struct {
		name    string
		f       Format
		codecID string
		w, h    int
		err     bool
	}{
		{"h264 avc", Format{Codec: "h264", StreamFormat: "avc", CodecData: avcC}, "V_MPEG4/ISO/AVC", 320, 240, false},
		{"h264 avc without codec_data", Format{Codec: "h264", StreamFormat: "avc"}, "", 0, 0, true},
		{"h264 avc with garbage codec_data", Format{Codec: "h264", StreamFormat: "avc", CodecData: []byte{9, 9}}, "", 0, 0, true},
		{"h264 byte-stream", Format{Codec: "h264", StreamFormat: "byte-stream", Width: 640, Height: 480}, "V_MPEG4/ISO/AVC", 640, 480, false},
		{"h265 hvc1", Format{Codec: "h265", StreamFormat: "hvc1", CodecData: []byte{1, 2, 3}, Width: 1280, Height: 720}, "V_MPEGH/ISO/HEVC", 1280, 720, false},
		{"h265 byte-stream", Format{Codec: "h265", StreamFormat: "byte-stream", Width: 352, Height: 288}, "V_MPEGH/ISO/HEVC", 352, 288, false},
		{"h265 hvc1 without codec_data", Format{Codec: "h265", StreamFormat: "hvc1"}, "", 0, 0, true},
		{"aac", Format{Codec: "aac", StreamFormat: "raw", CodecData: []byte{0x11, 0x90}, Rate: 48000, Channels: 2}, "A_AAC", 0, 0, false},
		{"aac without codec_data", Format{Codec: "aac", Rate: 48000, Channels: 2}, "", 0, 0, true},
		{"alaw", Format{Codec: "alaw", Rate: 8000, Channels: 1}, "A_MS/ACM", 0, 0, false},
		{"mulaw bad rate", Format{Codec: "mulaw", Rate: 100, Channels: 1}, "", 0, 0, true},
		{"vp8", Format{Codec: "vp8"}, "", 0, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := trackFor(c.f, DefaultCodecID, DefaultTrackName)
			if c.err {
				if !errors.Is(err, ErrFormat) {
					t.Fatalf("err = %v, want ErrFormat", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tr.entry.CodecID != c.codecID || tr.entry.PixelWidth != c.w || tr.entry.PixelHeight != c.h {
				t.Fatalf("track = %+v", tr.entry)
			}
		})
	}
}

func TestWaveFormatEx(t *testing.T) {
	tr, err := trackFor(Format{Codec: "mulaw", Rate: 8000, Channels: 2}, DefaultCodecID, DefaultTrackName)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{7, 0, 2, 0, 0x40, 0x1F, 0, 0, 0x80, 0x3E, 0, 0, 2, 0, 8, 0, 0, 0}
	if !bytes.Equal(tr.entry.CodecPrivate, want) || tr.entry.SamplingFrequency != 8000 || tr.entry.Channels != 2 {
		t.Fatalf("CodecPrivate %x, want %x", tr.entry.CodecPrivate, want)
	}
}

// Annex-B access units become AVCC and their SPS/PPS the CodecPrivate.
func TestAnnexBConversion(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	cfg, err := h264.ParseConfig(fx[0xE9 : 0xE9+0x2C])
	if err != nil {
		t.Fatal(err)
	}
	var au []byte
	for _, n := range [][]byte{{0x09, 0x10}, cfg.SPS[0], cfg.PPS[0], {0x65, 0x88, 0x80}} {
		au = append(append(au, 0, 0, 0, 1), n...)
	}
	tr, _ := trackFor(Format{Codec: "h264", StreamFormat: "byte-stream"}, DefaultCodecID, DefaultTrackName)
	out, cpd, err := tr.convert(nil, au, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cpd, fx[0xE9:0xE9+0x2C]) {
		t.Fatalf("CodecPrivate %x", cpd)
	}
	var nals int
	if err := h264.SplitAVCC(out, 4, func([]byte) error { nals++; return nil }); err != nil || nals != 4 {
		t.Fatalf("AVCC: %d NALs, %v", nals, err)
	}
	tr.setCodecPrivate(cpd)
	if tr.entry.PixelWidth != 320 || tr.needCPD {
		t.Fatalf("after CodecPrivate: %+v", tr.entry)
	}
	if _, _, err := tr.convert(nil, []byte{1, 2, 3, 4}, false); err == nil {
		t.Fatal("garbage access unit accepted")
	}
}

// H.265 byte-stream: the hvcC is built from the in-band VPS/SPS/PPS (byte for
// byte what h265parse makes; see pkg/codec/h265) and the picture size comes
// from the SPS.
func TestH265AnnexB(t *testing.T) {
	au, err := os.ReadFile("../codec/h265/testdata/x265-params.bin")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trackFor(Format{Codec: "h265", StreamFormat: "byte-stream"}, DefaultCodecID, DefaultTrackName)
	if err != nil {
		t.Fatal(err)
	}
	_, cpd, err := tr.convert(nil, au, true)
	if err != nil || cpd == nil || cpd[0] != 1 {
		t.Fatalf("cpd %x, %v", cpd, err)
	}
	tr.setCodecPrivate(cpd)
	if tr.entry.PixelWidth != 352 || tr.entry.PixelHeight != 288 || tr.entry.CodecID != "V_MPEGH/ISO/HEVC" {
		t.Fatalf("track %+v", tr.entry)
	}
}

// The fragment builder leaves room for what sealing adds to a frame, so
// encrypted fragments grow without a copy per frame.
func TestSealSlackCoversE2EEOverhead(t *testing.T) {
	if e2ee.MaxOverhead > fragment.SealSlack {
		t.Fatalf("SFrame adds up to %d bytes to a frame, fragment.SealSlack is %d", e2ee.MaxOverhead, fragment.SealSlack)
	}
}
