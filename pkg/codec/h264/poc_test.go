package h264

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// accessUnits splits an Annex-B stream into access units (7.4.1.2.3): a
// new one starts at an AUD, SPS, PPS or SEI after a slice, or at a slice
// whose first_mb_in_slice is 0.
func accessUnits(t testing.TB, b []byte) [][][]byte {
	t.Helper()
	var aus [][][]byte
	var cur [][]byte
	vcl := false
	err := SplitAnnexB(b, func(nal []byte) error {
		typ := nal[0] & NALTypeMask
		starts := false
		switch typ {
		case NALAUD, NALSPS, NALPPS, NALSEI:
			starts = vcl
		case NALSlice, NALIDR:
			starts = vcl && len(nal) > 1 && nal[1]&0x80 != 0 // first_mb_in_slice == 0
		}
		if starts && len(cur) > 0 {
			aus = append(aus, cur)
			cur, vcl = nil, false
		}
		cur = append(cur, nal)
		if typ == NALSlice || typ == NALIDR {
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

// mp4PTS reads the presentation times of the same encode muxed by mp4mux,
// in decoding order (testdata/*.pts: ffprobe packet=pts,dts,flags).
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

// The picture order counts of x264 encodes with B-frames (and B-pyramids,
// interlacing, or none at all) give, frame by frame, the presentation times
// mp4mux stored for the same encode: counts step by 2 per frame from each
// IDR picture.
func TestPictureOrderMatchesMP4(t *testing.T) {
	for _, c := range []struct {
		file     string
		poctype  int
		reorder  int
		frames   bool // frame_mbs_only_flag
		interval int64
	}{
		{"pyramid.h264", 0, 2, true, 100},
		{"interlaced.h264", 0, 1, false, 100},
		{"ippp.h264", 2, 0, true, 100},
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
			resets := 0
			for i, au := range aus {
				pic, err := o.AccessUnit(au)
				if err != nil {
					t.Fatalf("access unit %d: %v", i, err)
				}
				if pic.POCType != c.poctype || pic.MaxNumReorderFrames != c.reorder || pic.FrameMbsOnly != c.frames || pic.Field {
					t.Fatalf("access unit %d: %+v", i, pic)
				}
				if pic.Reset {
					resets++
					anchorPTS, anchorPOC = want[i], pic.POC
				}
				if got := anchorPTS + (pic.POC-anchorPOC)/2*c.interval; got != want[i] || (pic.POC-anchorPOC)%2 != 0 {
					t.Fatalf("access unit %d: POC %d (reset %v) gives pts %d, mp4mux has %d", i, pic.POC, pic.Reset, got, want[i])
				}
			}
			if resets < 2 {
				t.Fatalf("%d IDR pictures, want several", resets)
			}
		})
	}
}

// bitWriter writes the RBSP syntax for synthetic NAL units.
type bitWriter struct {
	b    []byte
	bits int
}

func (w *bitWriter) u(n int, v uint32) *bitWriter {
	for i := n - 1; i >= 0; i-- {
		if w.bits%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (7 - w.bits%8)
		w.bits++
	}
	return w
}

func (w *bitWriter) ue(v uint32) *bitWriter {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.u(n, 0)
	return w.u(n+1, v)
}

func (w *bitWriter) se(v int32) *bitWriter {
	if v > 0 {
		return w.ue(uint32(2*v - 1))
	}
	return w.ue(uint32(-2 * v))
}

// nal ends the RBSP (stop bit and padding) behind a NAL header byte.
func (w *bitWriter) nal(header byte) []byte {
	w.u(1, 1)
	for w.bits%8 != 0 {
		w.u(1, 0)
	}
	// Escape as an encoder would (00 00 0x → 00 00 03 0x).
	out := []byte{header}
	zeros := 0
	for _, c := range w.b {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// synthSPS is a Main-profile SPS of 16x16 with the given POC type fields.
func synthSPS(pocType uint32, frameMbsOnly bool, poc func(w *bitWriter)) []byte {
	w := &bitWriter{}
	w.u(8, 77).u(8, 0).u(8, 30).ue(0) // profile, constraints, level, sps id
	w.ue(0)                           // log2_max_frame_num_minus4: 4 bits
	w.ue(pocType)
	poc(w)
	w.ue(2).u(1, 0)   // max_num_ref_frames, gaps
	w.ue(0).ue(0)     // 1x1 macroblocks
	if frameMbsOnly { // frame_mbs_only_flag
		w.u(1, 1)
	} else {
		w.u(1, 0).u(1, 0)
	}
	w.u(1, 1).u(1, 0).u(1, 0) // direct_8x8, no cropping, no VUI
	return w.nal(0x67)
}

// synthPPS has bottom_field_pic_order_in_frame_present_flag set.
func synthPPS() []byte {
	w := &bitWriter{}
	w.ue(0).ue(0).u(1, 0).u(1, 1).ue(0)         // ids, CAVLC, bottom_field_pic_order_in_frame_present, one slice group
	w.ue(0).ue(0).u(1, 0).u(2, 0)               // one reference each, no weighted prediction
	w.se(0).se(0).se(0).u(1, 0).u(1, 0).u(1, 0) // qp, qs, chroma offset, flags
	return w.nal(0x68)
}

// synthSlice is a slice of type st with the given header fields.
type synthSlice struct {
	idr       bool
	ref       bool
	st        uint32
	frameNum  uint32
	field     *bool // nil: frame_mbs_only stream; else field_pic_flag (bottom when true)
	bottom    bool
	lsb       uint32 // type 0, 4 bits
	deltaBot  int32  // type 0 frame
	delta     [2]int32
	pocType   int
	mmco5     bool
	alwaysZ   bool
	fieldPics bool
}

func (s synthSlice) nal() []byte {
	w := &bitWriter{}
	w.ue(0).ue(s.st).ue(0) // first_mb_in_slice, slice_type, pps id
	w.u(4, s.frameNum)
	field := false
	if s.field != nil {
		field = *s.field
		if field {
			w.u(1, 1)
			if s.bottom {
				w.u(1, 1)
			} else {
				w.u(1, 0)
			}
		} else {
			w.u(1, 0)
		}
	}
	if s.idr {
		w.ue(0)
	}
	switch s.pocType {
	case 0:
		w.u(4, s.lsb)
		if !field {
			w.se(s.deltaBot)
		}
	case 1:
		if !s.alwaysZ {
			w.se(s.delta[0])
			if !field {
				w.se(s.delta[1])
			}
		}
	}
	if s.ref {
		if s.st%5 == SliceB {
			w.u(1, 1) // direct_spatial_mv_pred_flag
		}
		if s.st%5 != SliceI {
			w.u(1, 0) // num_ref_idx_active_override_flag
			w.u(1, 0) // ref_pic_list_modification_flag_l0
			if s.st%5 == SliceB {
				w.u(1, 0)
			}
		}
		if s.idr {
			w.u(2, 0)
		} else if s.mmco5 {
			w.u(1, 1).ue(5).ue(0)
		} else {
			w.u(1, 0)
		}
	}
	w.ue(0) // slice_qp_delta and on: not read
	header := byte(NALSlice)
	if s.idr {
		header = NALIDR
	}
	if s.ref {
		header |= 0x60
	}
	return w.nal(header)
}

// Picture order count type 1 (8.2.1.2): the expected counts of a POC cycle
// of I/P reference frames with a non-reference B-frame between them, the
// bottom field offsets, a frame_num wrap and a reset by MMCO 5.
func TestPictureOrderType1(t *testing.T) {
	sps := synthSPS(1, true, func(w *bitWriter) {
		w.u(1, 0).se(-2).se(1).ue(2).se(4).se(2) // offsets: non-ref -2, top-to-bottom 1, cycle {4, 2}
	})
	var o PictureOrder
	for _, ps := range [][]byte{sps, synthPPS()} {
		if err := o.AddParameterSet(ps); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		s    synthSlice
		want int64
	}{
		{synthSlice{idr: true, ref: true, st: 7, frameNum: 0}, 0},
		{synthSlice{ref: true, st: 5, frameNum: 1}, 4},                         // absFrameNum 1: 4
		{synthSlice{st: 6, frameNum: 2}, 2},                                    // non-ref: abs 1 → 4, -2
		{synthSlice{ref: true, st: 5, frameNum: 2}, 6},                         // abs 2: 4+2
		{synthSlice{ref: true, st: 5, frameNum: 3, delta: [2]int32{1, 0}}, 11}, // abs 3: cycle 1 → 6+4, +1
		{synthSlice{ref: true, st: 5, frameNum: 3, delta: [2]int32{0, -5}}, 6}, // same frame_num; bottom = 10+1-5
		{synthSlice{ref: true, st: 5, frameNum: 15}, 46},                       // abs 15: 7 cycles → 42, +4
		{synthSlice{ref: true, st: 5, frameNum: 0}, 48},                        // frame_num wraps: FrameNumOffset 16, abs 16 → 42+4+2
		{synthSlice{ref: true, st: 5, frameNum: 1, mmco5: true}, 0},            // MMCO 5: relative to itself
		{synthSlice{ref: true, st: 5, frameNum: 1}, 4},                         // counted from frame_num 0 again
	}
	for i, st := range steps {
		st.s.pocType = 1
		pic, err := o.AccessUnit([][]byte{st.s.nal()})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if pic.POC != st.want {
			t.Fatalf("step %d: POC %d, want %d", i, pic.POC, st.want)
		}
		if pic.Reset != (st.s.idr || st.s.mmco5) {
			t.Fatalf("step %d: reset %v", i, pic.Reset)
		}
	}
}

// Type 0 with fields (8.2.1.1): a bottom field takes its own count, a frame
// the lesser of its fields, the MSB follows the LSB wrap, and after an MMCO 5
// the counts restart from the top field of the picture that had it.
func TestPictureOrderType0Fields(t *testing.T) {
	sps := synthSPS(0, false, func(w *bitWriter) { w.ue(0) }) // 4-bit LSB
	var o PictureOrder
	for _, ps := range [][]byte{sps, synthPPS()} {
		if err := o.AddParameterSet(ps); err != nil {
			t.Fatal(err)
		}
	}
	yes, no := true, false
	steps := []struct {
		s    synthSlice
		want int64
	}{
		{synthSlice{idr: true, ref: true, st: 7, field: &yes, lsb: 0}, 0},                // top field
		{synthSlice{ref: true, st: 5, field: &yes, bottom: true, lsb: 1}, 1},             // its bottom field
		{synthSlice{ref: true, st: 5, frameNum: 1, field: &no, lsb: 6, deltaBot: -3}, 3}, // frame: min(6, 3)
		{synthSlice{ref: true, st: 5, frameNum: 2, field: &no, lsb: 12}, 12},
		{synthSlice{ref: true, st: 5, frameNum: 3, field: &no, lsb: 2}, 18},               // LSB wraps: MSB 16
		{synthSlice{st: 1, frameNum: 4, field: &no, lsb: 14}, 14},                         // non-reference, before it: MSB 0
		{synthSlice{ref: true, st: 5, frameNum: 4, field: &no, lsb: 8, mmco5: true}, 0},   // 24, reset by MMCO 5
		{synthSlice{ref: true, st: 5, frameNum: 1, field: &no, lsb: 2}, 2},                // from LSB 0 (24-24)
		{synthSlice{ref: true, st: 5, frameNum: 2, field: &yes, bottom: true, lsb: 3}, 3}, // bottom field
		{synthSlice{idr: true, ref: true, st: 7, field: &no, lsb: 0, deltaBot: 1}, 0},     // IDR
	}
	for i, st := range steps {
		pic, err := o.AccessUnit([][]byte{st.s.nal()})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if pic.POC != st.want || pic.Field != (st.s.field != nil && *st.s.field) {
			t.Fatalf("step %d: POC %d field %v, want %d", i, pic.POC, pic.Field, st.want)
		}
	}
}

// Undecodable input is an error naming the cause, never a panic, and does
// not disturb the count of the pictures that follow.
func TestPictureOrderBadInput(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "pyramid.h264"))
	if err != nil {
		t.Fatal(err)
	}
	aus := accessUnits(t, raw)
	var o PictureOrder
	// Slices before any parameter set.
	slice := aus[1][len(aus[1])-1]
	if _, err := o.AccessUnit([][]byte{slice}); !errors.Is(err, ErrNoParameterSets) {
		t.Fatalf("slice without parameter sets: %v", err)
	}
	if _, err := o.AccessUnit([][]byte{{0x09, 0xF0}}); !errors.Is(err, ErrNoSlice) {
		t.Fatalf("AUD only: %v", err)
	}
	if first, err := o.AccessUnit(aus[0]); err != nil || !first.Reset {
		t.Fatalf("IDR: %+v %v", first, err)
	}
	var ref PictureOrder
	ref.AccessUnit(aus[0])
	for i, au := range aus[1:10] {
		last := au[len(au)-1]
		for _, cut := range []int{1, 2, 3} {
			if _, err := o.AccessUnit([][]byte{last[:cut]}); !errors.Is(err, ErrBadSlice) {
				t.Fatalf("AU %d truncated to %d bytes: %v", i+1, cut, err)
			}
		}
		if _, err := o.AccessUnit([][]byte{{0x68, 0x00, 0x00, 0x00}}); !errors.Is(err, ErrBadPPS) {
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
	for _, name := range []string{"pyramid.h264", "interlaced.h264", "ippp.h264"} {
		raw, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		// The parameter sets and first pictures: small seeds.
		aus := accessUnits(f, raw)
		var seed []byte
		for _, au := range aus[:4] {
			for _, nal := range au {
				seed = append(append(seed, 0, 0, 0, 1), nal[:min(len(nal), 64)]...)
			}
		}
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var o PictureOrder
		SplitAnnexB(b, func(nal []byte) error {
			pic, err := o.AccessUnit([][]byte{nal})
			if err == nil && pic.MaxNumReorderFrames > 16 {
				t.Fatalf("reorder depth %d", pic.MaxNumReorderFrames)
			}
			return nil
		})
		if bytes.HasPrefix(b, []byte{0x68}) {
			ParsePPS(b)
		}
	})
}

// The reorder depth: from the VUI when declared (x264 writes it), inferred
// 0 for Baseline, unknown (-1) for Main without a bitstream restriction.
func TestReorderDepth(t *testing.T) {
	main := synthSPS(0, true, func(w *bitWriter) { w.ue(0) })
	baseline := append([]byte{0x67, 66}, main[2:]...)
	for _, c := range []struct {
		name string
		sps  []byte
		want int
	}{{"main", main, -1}, {"baseline", baseline, 0}} {
		s, err := ParseSPS(c.sps)
		if err != nil {
			t.Fatal(err)
		}
		if s.MaxNumReorderFrames != c.want {
			t.Errorf("%s: MaxNumReorderFrames %d, want %d", c.name, s.MaxNumReorderFrames, c.want)
		}
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "pyramid.h264"))
	if err != nil {
		t.Fatal(err)
	}
	for _, nal := range accessUnits(t, raw)[0] {
		if nal[0]&NALTypeMask == NALSPS {
			if s, err := ParseSPS(nal); err != nil || s.MaxNumReorderFrames != 2 {
				t.Fatalf("x264 SPS: %+v, %v", s, err)
			}
		}
	}
}
