package h265

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/codec/h264"
)

// testdata/x265-params.bin starts a byte-stream from Debian's x265enc
// (352x288); testdata/h265parse-hvcc.hex is the codec_data GStreamer's
// h265parse made for the same encoder settings.
func params(t testing.TB) (vps, sps, pps [][]byte) {
	b, err := os.ReadFile("testdata/x265-params.bin")
	if err != nil {
		t.Fatal(err)
	}
	h264.SplitAnnexB(b, func(n []byte) error {
		switch NALType(n) {
		case NALVPS:
			vps = append(vps, n)
		case NALSPS:
			sps = append(sps, n)
		case NALPPS:
			pps = append(pps, n)
		}
		return nil
	})
	return
}

func TestBuildConfigMatchesH265Parse(t *testing.T) {
	vps, sps, pps := params(t)
	info, err := ParseSPS(sps[0])
	if err != nil {
		t.Fatal(err)
	}
	if info.Width != 352 || info.Height != 288 {
		t.Fatalf("sps %+v", info)
	}
	got, err := BuildConfig(vps, sps, pps)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := os.ReadFile("testdata/h265parse-hvcc.hex")
	want, _ := hex.DecodeString(string(bytes.TrimSpace(h)))
	if !bytes.Equal(got, want) {
		t.Fatalf("hvcC\n got %x\nwant %x", got, want)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := BuildConfig(nil, nil, nil); !errors.Is(err, ErrBadHVCC) {
		t.Fatal(err)
	}
	for _, b := range [][]byte{nil, {0x42, 1}, {0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}} {
		if _, err := ParseSPS(b); !errors.Is(err, ErrBadSPS) {
			t.Errorf("ParseSPS(%x): %v", b, err)
		}
	}
}

func FuzzParseSPS(f *testing.F) {
	_, sps, _ := params(f)
	f.Add(sps[0])
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := ParseSPS(b); err == nil && (s.Width <= 0 || s.Height <= 0) {
			t.Fatalf("accepted %dx%d", s.Width, s.Height)
		}
	})
}

// ParseConfig reads back what BuildConfig wrote, and rejects records that
// overrun.
func TestParseConfig(t *testing.T) {
	vps, sps, pps := params(t)
	c, err := BuildConfig(vps, sps, pps)
	if err != nil {
		t.Fatal(err)
	}
	size, nals, err := ParseConfig(c)
	if err != nil || size != 4 || len(nals) != 3 || !bytes.Equal(nals[0], vps[0]) || !bytes.Equal(nals[1], sps[0]) || !bytes.Equal(nals[2], pps[0]) {
		t.Fatalf("ParseConfig = %d, %x, %v", size, nals, err)
	}
	for cut := 0; cut < len(c); cut++ {
		if _, _, err := ParseConfig(c[:cut]); !errors.Is(err, ErrBadHVCC) {
			t.Fatalf("record cut to %d bytes: %v", cut, err)
		}
	}
}
