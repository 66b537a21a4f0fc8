package h264

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// The official producer's CodecPrivate (x264, High 4:4:4 Predictive, 320x240).
func officialConfig(t *testing.T) []byte {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	return fx[0xE9 : 0xE9+0x2C]
}

func TestParseOfficialConfig(t *testing.T) {
	cpd := officialConfig(t)
	c, err := ParseConfig(cpd)
	if err != nil {
		t.Fatal(err)
	}
	if c.NALLengthSize != 4 || len(c.SPS) != 1 || len(c.PPS) != 1 || c.Profile != 244 || c.Level != 13 {
		t.Fatalf("config = %+v", c)
	}
	info, err := ParseSPS(c.SPS[0])
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 320 || info.Height != 240 || info.ProfileIDC != 244 || info.ChromaFormatIDC != 3 { // 4:4:4
		t.Fatalf("sps = %+v", info)
	}
	rebuilt, err := BuildConfig(c.SPS, c.PPS)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rebuilt, cpd) {
		t.Fatalf("BuildConfig = %x\nwant %x", rebuilt, cpd)
	}
}

func TestAnnexBToAVCC(t *testing.T) {
	in := []byte{0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x65, 0xAA, 0, 0, 3, 1, 0}
	got, err := AppendAVCC(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 2, 0x09, 0xF0, 0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 6, 0x65, 0xAA, 0, 0, 3, 1}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
	var nals [][]byte
	if err := SplitAVCC(got, 4, func(n []byte) error { nals = append(nals, n); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(nals) != 3 || nals[2][0] != 0x65 {
		t.Fatalf("split = %x", nals)
	}
	if _, err := AppendAVCC(nil, []byte{1, 2, 3, 4}); !errors.Is(err, ErrNoStartCode) {
		t.Fatalf("garbage: err = %v", err)
	}
	if err := SplitAVCC([]byte{0, 0, 0, 9, 1}, 4, func([]byte) error { return nil }); !errors.Is(err, ErrTruncatedNAL) {
		t.Fatalf("truncated: err = %v", err)
	}
}

func TestBadInput(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {0, 1, 2, 3, 4, 5, 6}, {1, 100, 0, 30, 0xFF, 0xE1, 0, 50}} {
		if _, err := ParseConfig(b); !errors.Is(err, ErrBadAVCC) {
			t.Errorf("ParseConfig(%x) err = %v", b, err)
		}
	}
	for _, b := range [][]byte{nil, {0x67}, {0x68, 1, 2, 3}, {0x67, 66, 0, 30, 0}} {
		if _, err := ParseSPS(b); !errors.Is(err, ErrBadSPS) {
			t.Errorf("ParseSPS(%x) err = %v", b, err)
		}
	}
}

func FuzzAnnexB(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x67, 1, 2})
	f.Add([]byte{0, 0, 1, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		avcc, err := AppendAVCC(nil, b)
		if err != nil {
			return
		}
		var n int
		if err := SplitAVCC(avcc, 4, func(nal []byte) error { n++; return nil }); err != nil {
			t.Fatalf("AVCC from AppendAVCC does not split: %v", err)
		}
	})
}

func FuzzParseSPS(f *testing.F) {
	f.Add([]byte{0x67, 0xF4, 0x00, 0x0D, 0x91, 0x96, 0x40, 0x50, 0x7E, 0xC0, 0x5A, 0x83})
	f.Add([]byte{0x67, 66, 0, 30, 0xF4, 0x05, 0x01, 0xEC, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSPS(b)
		if err == nil && (s.Width <= 0 || s.Height <= 0 || s.Width > 16384 || s.Height > 16384*2) {
			t.Fatalf("accepted implausible size %dx%d", s.Width, s.Height)
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte{1, 66, 0, 30, 0xFF, 0xE1, 0, 4, 0x67, 66, 0, 30, 1, 0, 2, 0x68, 0xCE})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err == nil && len(c.SPS) == 0 {
			t.Fatal("config without SPS accepted")
		}
	})
}
