package sink

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/codec/h264"
	"github.com/kvsgo/kvsgo/pkg/codec/h265"
)

// esFixture is an x264/x265 encode (pkg/codec/*/testdata) split into access
// units, with the presentation times mp4mux stored for the same encode
// (time base 1/2500, 25 fps) and its parameter sets.
type esFixture struct {
	aus      [][][]byte
	mp4      []time.Duration
	sps, pps [][]byte
	vps      [][]byte
}

func loadES(t testing.TB, path string, hevc bool) esFixture {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fx esFixture
	var cur [][]byte
	vcl := false
	h264.SplitAnnexB(raw, func(nal []byte) error {
		var isVCL, first, param bool
		if hevc {
			typ := h265.NALType(nal)
			isVCL, first = h265.IsVCL(typ), len(nal) > 2 && nal[2]&0x80 != 0
			param = typ >= h265.NALVPS && typ <= h265.NALAUD || typ == 39
			switch typ {
			case h265.NALVPS:
				fx.vps = append(fx.vps, nal)
			case h265.NALSPS:
				fx.sps = append(fx.sps, nal)
			case h265.NALPPS:
				fx.pps = append(fx.pps, nal)
			}
		} else {
			typ := nal[0] & h264.NALTypeMask
			isVCL, first = typ == h264.NALSlice || typ == h264.NALIDR, len(nal) > 1 && nal[1]&0x80 != 0
			param = typ >= h264.NALSEI && typ <= h264.NALAUD
			switch typ {
			case h264.NALSPS:
				fx.sps = append(fx.sps, nal)
			case h264.NALPPS:
				fx.pps = append(fx.pps, nal)
			}
		}
		if vcl && (param || isVCL && first) {
			fx.aus = append(fx.aus, cur)
			cur, vcl = nil, false
		}
		cur = append(cur, nal)
		vcl = vcl || isVCL
		return nil
	})
	fx.aus = append(fx.aus, cur)
	f, err := os.Open(path + ".pts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var p int64
		fmt.Sscan(strings.Split(sc.Text(), ",")[0], &p)
		fx.mp4 = append(fx.mp4, time.Duration(p)*400*time.Microsecond)
	}
	if len(fx.aus) != 60 || len(fx.mp4) != 60 {
		t.Fatalf("%s: %d access units, %d mp4 packets", path, len(fx.aus), len(fx.mp4))
	}
	return fx
}

// frameData lays an access unit out as Annex-B or with 4-byte lengths.
func frameData(au [][]byte, annexB bool) []byte {
	var b []byte
	for _, nal := range au {
		if annexB {
			b = append(b, 0, 0, 0, 1)
		} else {
			b = append(b, byte(len(nal)>>24), byte(len(nal)>>16), byte(len(nal)>>8), byte(len(nal)))
		}
		b = append(b, nal...)
	}
	return b
}

// Frames with a DTS only (filesrc ! h264parse) get the presentation times
// mp4mux gave the same encode, shifted by the reorder delay (two frames for
// these B-pyramids) so that no PTS comes before its DTS; in both stream
// formats, and for frames without any timestamp as well.
func TestPresenterMatchesMP4(t *testing.T) {
	const frame = 40 * time.Millisecond
	for _, c := range []struct {
		file string
		hevc bool
	}{
		{"../codec/h264/testdata/pyramid.h264", false},
		{"../codec/h264/testdata/interlaced.h264", false},
		{"../codec/h265/testdata/pyramid.h265", true},
		{"../codec/h265/testdata/opengop.h265", true},
	} {
		fx := loadES(t, c.file, c.hevc)
		var cpd []byte
		var err error
		if c.hevc {
			cpd, err = h265.BuildConfig(fx.vps, fx.sps, fx.pps)
		} else {
			cpd, err = h264.BuildConfig(fx.sps, fx.pps)
		}
		if err != nil {
			t.Fatal(err)
		}
		// The reorder delay mp4mux used: minus the first DTS.
		delay := map[string]time.Duration{"pyramid.h264": 2 * frame, "interlaced.h264": frame, "pyramid.h265": 2 * frame, "opengop.h265": 2 * frame}
		for _, format := range []string{"byte-stream", "avc", "no-timestamps"} {
			name := c.file[strings.LastIndex(c.file, "/")+1:]
			t.Run(name+"/"+format, func(t *testing.T) {
				f := Format{StreamFormat: format, CodecData: cpd, FramerateNum: 25, FramerateDen: 1}
				if format == "no-timestamps" {
					f.StreamFormat = "byte-stream"
				}
				p := newPresenter(c.hevc, f, frame)
				for i, au := range fx.aus {
					fr := Frame{PTS: NoTime, DTS: time.Duration(i) * frame, Duration: frame, Data: frameData(au, f.StreamFormat == "byte-stream")}
					if format == "no-timestamps" {
						fr.DTS, fr.Duration = NoTime, NoTime
					}
					pts, warning := p.present(fr)
					if warning != "" {
						t.Fatalf("frame %d: warning %q", i, warning)
					}
					if want := fx.mp4[i] + delay[name]; pts != want {
						t.Fatalf("frame %d: pts %v, want %v (mp4mux %v + delay %v)", i, pts, want, fx.mp4[i], delay[name])
					}
					if pts < time.Duration(i)*frame {
						t.Fatalf("frame %d: pts %v before dts %v", i, pts, time.Duration(i)*frame)
					}
				}
			})
		}
	}
}

// Without B-frames PTS stays DTS; a frame whose slice header cannot be read
// keeps its DTS (in the reordered time line), with one warning per cause,
// and the frames after it are timed as before.
func TestPresenterFallback(t *testing.T) {
	const frame = 40 * time.Millisecond
	ippp := loadES(t, "../codec/h264/testdata/ippp.h264", false)
	p := newPresenter(false, Format{StreamFormat: "byte-stream"}, frame)
	for i, au := range ippp.aus {
		dts := time.Duration(i) * frame
		if pts, w := p.present(Frame{PTS: NoTime, DTS: dts, Data: frameData(au, true)}); pts != dts || w != "" {
			t.Fatalf("frame %d without B-frames: pts %v (dts %v), warning %q", i, pts, dts, w)
		}
	}

	fx := loadES(t, "../codec/h264/testdata/pyramid.h264", false)
	p = newPresenter(false, Format{StreamFormat: "byte-stream"}, frame)
	// Before any parameter set: the frame keeps its DTS.
	if pts, w := p.present(Frame{PTS: NoTime, DTS: 0, Data: frameData(fx.aus[1], true)}); pts != 0 || !strings.Contains(w, "parameter set") {
		t.Fatalf("slice before parameter sets: pts %v, warning %q", pts, w)
	}
	warnings := 0
	for i, au := range fx.aus {
		dts := time.Duration(i) * frame
		data := frameData(au, true)
		if i%7 == 5 {
			// Cut inside the first slice header.
			last := au[len(au)-1]
			data = frameData(append(au[:len(au)-1:len(au)-1], last[:2]), true)
		}
		pts, w := p.present(Frame{PTS: NoTime, DTS: dts, Data: data})
		if w != "" {
			warnings++
			if !strings.Contains(w, "cannot read its picture order count") {
				t.Fatalf("frame %d: warning %q", i, w)
			}
		}
		want := fx.mp4[i] + 2*frame
		if i%7 == 5 {
			want = dts + 2*frame
		}
		if pts != want {
			t.Fatalf("frame %d: pts %v, want %v", i, pts, want)
		}
	}
	if warnings != 1 {
		t.Fatalf("%d warnings, want 1", warnings)
	}

	// No timestamps and no frame duration: nothing to derive from.
	p = newPresenter(false, Format{StreamFormat: "byte-stream"}, 0)
	if pts, w := p.present(Frame{PTS: NoTime, DTS: NoTime, Duration: NoTime, Data: frameData(fx.aus[0], true)}); pts != 0 || !strings.Contains(w, "frame duration") {
		t.Fatalf("first frame without a duration: pts %v, warning %q", pts, w)
	}
	if pts, w := p.present(Frame{PTS: NoTime, DTS: NoTime, Duration: NoTime, Data: frameData(fx.aus[1], true)}); pts != NoTime || !strings.Contains(w, "framerate") {
		t.Fatalf("no duration: pts %v, warning %q", pts, w)
	}
}

// Whatever the frames hold, the presenter returns a time and never panics.
func FuzzPresenter(f *testing.F) {
	fx := loadES(f, "../codec/h264/testdata/pyramid.h264", false)
	var seed []byte
	for _, au := range fx.aus[:3] {
		seed = append(seed, frameData(au, true)...)
	}
	f.Add(seed[:min(len(seed), 4096)], false, true)
	hx := loadES(f, "../codec/h265/testdata/opengop.h265", true)
	seed = seed[:0]
	for _, au := range hx.aus[:3] {
		seed = append(seed, frameData(au, false)...)
	}
	f.Add(seed[:min(len(seed), 4096)], true, false)
	f.Fuzz(func(t *testing.T, b []byte, hevc, annexB bool) {
		format := Format{StreamFormat: "avc"}
		if annexB {
			format.StreamFormat = "byte-stream"
		}
		p := newPresenter(hevc, format, 40*time.Millisecond)
		// Each third of the input is a frame.
		for i, n := 0, len(b)/3+1; i < len(b); i += n {
			pts, _ := p.present(Frame{PTS: NoTime, DTS: time.Duration(i) * time.Millisecond, Data: b[i:min(len(b), i+n)]})
			if pts < 0 {
				t.Fatalf("negative pts %v", pts)
			}
		}
	})
}

// The sink times frames without PTS by their picture order counts: with
// relative fragment times the stream times are mp4mux's presentation times.
func TestTimestampsFromPictureOrder(t *testing.T) {
	fx := loadES(t, "../codec/h264/testdata/pyramid.h264", false)
	tr, err := trackFor(Format{Codec: "h264", StreamFormat: "byte-stream", FramerateNum: 25, FramerateDen: 1}, "", "video")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{FrameTimecodes: true, Clock: clock.NewFake(time.Unix(1_800_000_000, 0))}
	s := &Sink{cfg: cfg.withDefaults(), track: tr}
	for i, au := range fx.aus {
		got, err := s.timestampLocked(Frame{PTS: NoTime, DTS: time.Duration(i) * 40 * time.Millisecond, Duration: NoTime, Data: frameData(au, true)}, s.track)
		if err != nil {
			t.Fatal(err)
		}
		if got != fx.mp4[i] {
			t.Fatalf("frame %d: stream time %v, mp4mux has %v", i, got, fx.mp4[i])
		}
	}
	if len(s.queued) != 0 {
		t.Fatalf("events: %+v", s.queued)
	}
}

// A stream cut at a CRA picture of an open GOP starts with leading pictures
// that cannot be decoded: they are timed at the start, not before it.
func TestPresenterStartsInOpenGOP(t *testing.T) {
	const frame = 40 * time.Millisecond
	fx := loadES(t, "../codec/h265/testdata/opengop.h265", true)
	cra := -1
	for i, au := range fx.aus {
		for _, nal := range au {
			if h265.NALType(nal) == h265.NALCRA && cra < 0 && i > 0 {
				cra = i
			}
		}
	}
	if cra < 0 {
		t.Fatal("no CRA picture in the fixture")
	}
	p := newPresenter(true, Format{StreamFormat: "byte-stream"}, frame)
	var params [][]byte
	for _, nal := range fx.aus[0] {
		if typ := h265.NALType(nal); typ >= h265.NALVPS && typ <= h265.NALPPS {
			params = append(params, nal)
		}
	}
	start := time.Duration(-1)
	for i, au := range fx.aus[cra:] {
		if i == 0 && h265.NALType(au[0]) != h265.NALVPS {
			au = append(params, au...)
		}
		dts := time.Duration(i) * frame
		pts, w := p.present(Frame{PTS: NoTime, DTS: dts, Data: frameData(au, true)})
		if w != "" {
			t.Fatalf("frame %d: warning %q", i, w)
		}
		if start < 0 {
			start = pts
		}
		if pts < start {
			t.Fatalf("frame %d: pts %v before the first frame's %v", i, pts, start)
		}
		if want := fx.mp4[cra+i] - fx.mp4[cra] + start; fx.mp4[cra+i] >= fx.mp4[cra] && pts != want {
			t.Fatalf("frame %d: pts %v, want %v", i, pts, want)
		}
	}
}

// bits writes RBSP syntax for synthetic NAL units.
type bits struct {
	b []byte
	n int
}

func (w *bits) u(n int, v uint32) *bits {
	for i := n - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (7 - w.n%8)
		w.n++
	}
	return w
}

func (w *bits) ue(v uint32) *bits {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	return w.u(n, 0).u(n+1, v)
}

// nal ends the RBSP behind a NAL header (the payloads here hold no 00 00
// 0x runs that would need escaping).
func (w *bits) nal(header byte) []byte {
	w.u(1, 1)
	for w.n%8 != 0 {
		w.u(1, 0)
	}
	return append([]byte{0, 0, 0, 1, header}, w.b...)
}

// Counts that step by one per frame (ffmpeg's VA-API H.264 encoder) are
// recognised at the first odd difference from the IDR picture, with one
// warning; from there frames are timed one count per frame.
func TestPresenterCountsStepByOne(t *testing.T) {
	const frame = 40 * time.Millisecond
	w := &bits{}
	w.u(8, 77).u(8, 0).u(8, 30).ue(0)                     // Main, level 3, SPS 0
	w.ue(0).ue(0).ue(4)                                   // 4-bit frame_num, POC type 0, 8-bit LSB
	w.ue(2).u(1, 0).ue(0).ue(0).u(1, 1).u(1, 1).u(1, 0)   // refs, 16x16, frames only, no cropping
	w.u(1, 1).u(8, 0)                                     // VUI: nothing up to bitstream_restriction
	w.u(1, 1).u(1, 1).ue(0).ue(0).ue(0).ue(0).ue(1).ue(2) // max_num_reorder_frames 1
	sps := w.nal(0x67)
	pps := (&bits{}).ue(0).ue(0).u(1, 0).u(1, 0).ue(0).ue(0).ue(0).u(1, 0).u(2, 0).ue(0).ue(0).ue(0).u(3, 0).nal(0x68)
	slice := func(idr bool, st, frameNum, lsb uint32) []byte {
		w := (&bits{}).ue(0).ue(st).ue(0).u(4, frameNum)
		if idr {
			w.ue(0)
		}
		w.u(8, lsb)
		ref := st != 6
		if ref {
			if st == 5 {
				w.u(1, 0).u(1, 0) // no override, no list modification
			}
			if idr {
				w.u(2, 0)
			} else {
				w.u(1, 0)
			}
		}
		w.ue(0)
		header := byte(0x61)
		switch {
		case idr:
			header = 0x65
		case !ref:
			header = 0x01
		}
		return w.nal(header)
	}
	// I0 P2 B1 P4 B3 P6 B5 ...: display index = count.
	frames := [][]byte{append(append(sps, pps...), slice(true, 7, 0, 0)...)}
	display := []int{0}
	for k := 1; k < 8; k++ {
		frames = append(frames, slice(false, 5, uint32(k), uint32(2*k)), slice(false, 6, uint32(k+1), uint32(2*k-1)))
		display = append(display, 2*k, 2*k-1)
	}
	p := newPresenter(false, Format{StreamFormat: "byte-stream", FramerateNum: 25, FramerateDen: 1}, frame)
	warnings := 0
	for i, data := range frames {
		pts, w := p.present(Frame{PTS: NoTime, DTS: time.Duration(i) * frame, Data: data})
		if w != "" {
			warnings++
			if i != 2 || !strings.Contains(w, "step by one per frame") {
				t.Fatalf("frame %d: warning %q", i, w)
			}
		}
		// Frame 1, timed before the step was known, is the one exception.
		if want := time.Duration(display[i])*frame + frame; i != 1 && pts != want {
			t.Fatalf("frame %d: pts %v, want %v", i, pts, want)
		}
	}
	if warnings != 1 {
		t.Fatalf("%d warnings, want 1", warnings)
	}
}

// Counts are timed exactly from the caps' framerate, NTSC's included.
func TestCountsToTime(t *testing.T) {
	p := &presenter{fpsNum: 30000, fpsDen: 1001, countsPerFrame: 2}
	for _, c := range []struct {
		n    int64
		want time.Duration
	}{
		{2, 33366666}, {-2, -33366666}, {60000, 1001 * time.Second}, {60002, 1001*time.Second + 33366666}, {1 << 31, 35_827_185_527_466_666},
	} {
		if got := p.countsToTime(c.n, 0); got != c.want {
			t.Errorf("%d counts at 30000/1001: %v, want %v", c.n, got, c.want)
		}
	}
	p = &presenter{countsPerFrame: 1}
	if got := p.countsToTime(3, 40*time.Millisecond); got != 120*time.Millisecond {
		t.Errorf("3 counts of 40 ms: %v", got)
	}
}
