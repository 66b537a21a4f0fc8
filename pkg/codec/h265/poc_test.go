package h265

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/codec/h264"
)

// accessUnits splits an Annex-B stream into access units (7.4.2.4.4): a
// new one starts at an AUD, parameter set or prefix SEI after a slice
// segment, or at the first slice segment of a picture.
func accessUnits(t testing.TB, b []byte) [][][]byte {
	t.Helper()
	var aus [][][]byte
	var cur [][]byte
	vcl := false
	err := h264.SplitAnnexB(b, func(nal []byte) error {
		typ := NALType(nal)
		starts := false
		switch {
		case typ == NALAUD || typ == NALVPS || typ == NALSPS || typ == NALPPS || typ == 39:
			starts = vcl
		case IsVCL(typ):
			starts = vcl && len(nal) > 2 && nal[2]&0x80 != 0
		}
		if starts && len(cur) > 0 {
			aus = append(aus, cur)
			cur, vcl = nil, false
		}
		cur = append(cur, nal)
		if IsVCL(typ) {
			vcl = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) > 0 {
		aus = append(aus, cur)
	}
	return aus
}

// mp4PTS reads the presentation times mp4mux stored for the same encode,
// in decoding order.
func mp4PTS(t testing.TB, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pts []int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p, d int64
		if _, err := fmt.Sscanf(strings.ReplaceAll(sc.Text(), ",", " "), "%d %d", &p, &d); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		pts = append(pts, p)
	}
	return pts
}

// The picture order counts of x265 encodes with B-pyramids give, frame by
// frame, the presentation times mp4mux stored for the same encode: one
// count per frame from each IDR picture; across the CRA pictures of an
// open GOP (with their leading pictures) the counts run on.
func TestPictureOrderMatchesMP4(t *testing.T) {
	for _, c := range []struct {
		file    string
		resets  int
		reorder int
	}{
		{"pyramid.h265", 3, 2},
		{"opengop.h265", 1, 2},
	} {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			aus := accessUnits(t, raw)
			want := mp4PTS(t, filepath.Join("testdata", c.file+".pts"))
			if len(aus) != len(want) || len(aus) != 60 {
				t.Fatalf("%d access units, %d mp4 packets, want 60", len(aus), len(want))
			}
			var o PictureOrder
			var anchorPTS, anchorPOC int64
			resets, cras := 0, 0
			for i, au := range aus {
				pic, err := o.AccessUnit(au)
				if err != nil {
					t.Fatalf("access unit %d: %v", i, err)
				}
				if pic.MaxNumReorderPics != c.reorder || !pic.Output {
					t.Fatalf("access unit %d: %+v", i, pic)
				}
				if pic.Reset {
					resets++
					anchorPTS, anchorPOC = want[i], pic.POC
				}
				for _, nal := range au {
					if NALType(nal) == NALCRA {
						cras++
					}
				}
				if got := anchorPTS + (pic.POC-anchorPOC)*100; got != want[i] {
					t.Fatalf("access unit %d: POC %d (reset %v) gives pts %d, mp4mux has %d", i, pic.POC, pic.Reset, got, want[i])
				}
			}
			if resets != c.resets {
				t.Fatalf("%d resets, want %d", resets, c.resets)
			}
			if c.file == "opengop.h265" && cras < 2 {
				t.Fatalf("%d CRA pictures: the fixture should have an open GOP", cras)
			}
		})
	}
}

// A CRA picture first in the stream, or after an end of sequence, starts
// the count afresh and its RASL pictures are not output; in mid-stream it
// does neither.
func TestPictureOrderCRA(t *testing.T) {
	sps := &SPSInfo{Log2MaxPicOrderCntLsb: 4}
	var o PictureOrder
	steps := []struct {
		typ, lsb int
		poc      int64
		reset    bool
		output   bool
	}{
		{NALCRA, 8, 8, true, true},
		{NALRASLN, 6, 6, false, false}, // leading, cannot be decoded
		{1, 12, 12, false, true},       // TRAIL_R
		{NALCRA, 2, 18, false, true},   // mid-stream: the LSB wraps, MSB 16
		{NALRASLR, 0, 16, false, true}, // decodable now
		{NALIDRWRADL, 0, 0, true, true},
		{NALRADLN, 14, -2, false, true}, // leading, before the IDR picture
	}
	for i, st := range steps {
		pic := o.Next(&SliceHeader{NALType: st.typ, PicOutput: true, PicOrderCntLsb: uint32(st.lsb)}, sps)
		if pic.POC != st.poc || pic.Reset != st.reset || pic.Output != st.output {
			t.Fatalf("step %d: %+v, want POC %d reset %v output %v", i, pic, st.poc, st.reset, st.output)
		}
	}
	// An end of sequence NAL unit: the next CRA resets.
	o.afterEOS = true
	if pic := o.Next(&SliceHeader{NALType: NALCRA, PicOutput: true, PicOrderCntLsb: 4}, sps); !pic.Reset || pic.POC != 4 {
		t.Fatalf("CRA after end of sequence: %+v", pic)
	}
}

// Undecodable input is an error naming the cause, never a panic, and
// leaves the count of the pictures that follow as it was.
func TestPictureOrderBadInput(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "pyramid.h265"))
	if err != nil {
		t.Fatal(err)
	}
	aus := accessUnits(t, raw)
	var o, ref PictureOrder
	slice := aus[1][len(aus[1])-1]
	if _, err := o.AccessUnit([][]byte{slice}); !errors.Is(err, ErrNoParameterSets) {
		t.Fatalf("slice without parameter sets: %v", err)
	}
	if _, err := o.AccessUnit([][]byte{{0x46, 0x01, 0x10}}); !errors.Is(err, ErrNoSlice) {
		t.Fatalf("AUD only: %v", err)
	}
	if _, err := o.AccessUnit(aus[0]); err != nil {
		t.Fatal(err)
	}
	ref.AccessUnit(aus[0])
	for i, au := range aus[1:10] {
		last := au[len(au)-1]
		for _, cut := range []int{2, 3} {
			if _, err := o.AccessUnit([][]byte{last[:cut]}); err == nil {
				t.Fatalf("AU %d truncated to %d bytes: no error", i+1, cut)
			}
		}
		if _, err := o.AccessUnit([][]byte{{0x44, 0x01, 0x00, 0x00, 0x00}}); !errors.Is(err, ErrBadPPS) {
			t.Fatalf("bad PPS: %v", err)
		}
		got, err := o.AccessUnit(au)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := ref.AccessUnit(au)
		if got != want {
			t.Fatalf("AU %d after bad input: %+v, want %+v", i+1, got, want)
		}
	}
}

func FuzzPictureOrder(f *testing.F) {
	for _, name := range []string{"pyramid.h265", "opengop.h265"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		var seed []byte
		for _, au := range accessUnits(f, raw)[:4] {
			for _, nal := range au {
				seed = append(append(seed, 0, 0, 0, 1), nal[:min(len(nal), 64)]...)
			}
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var o PictureOrder
		h264.SplitAnnexB(b, func(nal []byte) error {
			pic, err := o.AccessUnit([][]byte{nal})
			if err == nil && pic.MaxNumReorderPics > 16 {
				t.Fatalf("reorder depth %d", pic.MaxNumReorderPics)
			}
			return nil
		})
	})
}
