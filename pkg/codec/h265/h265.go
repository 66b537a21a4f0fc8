// Package h265 builds the HEVC decoder configuration record (hvcC, the
// Matroska CodecPrivate of V_MPEGH/ISO/HEVC) from in-band VPS/SPS/PPS, reads
// it back, reads picture size from an SPS and computes the picture order
// count of each access unit from its first slice segment header
// (PictureOrder). Annex-B splitting is shared with H.264
// (pkg/codec/h264.SplitAnnexB).
//
// It imports the standard library and pkg/codec/h264 only.
package h265

import (
	"errors"
	"fmt"

	"github.com/kvsgo/kvsgo/pkg/codec/h264"
)

// NAL unit types used here.
const (
	NALIDRWRADL = 19
	NALIDRNLP   = 20
	NALCRA      = 21
	NALVPS      = 32
	NALSPS      = 33
	NALPPS      = 34
	NALAUD      = 35
)

// Errors.
var (
	ErrBadSPS  = errors.New("h265: malformed SPS")
	ErrBadHVCC = errors.New("h265: cannot build hvcC")
)

// NALType returns the type of a NAL unit (two-byte header).
func NALType(nal []byte) int {
	if len(nal) < 2 {
		return -1
	}
	return int(nal[0]>>1) & 0x3F
}

// SPSInfo is what kvsgo needs from a sequence parameter set.
type SPSInfo struct {
	MaxSubLayersMinus1   int
	TemporalIDNesting    bool
	GeneralProfileTier   [12]byte // general_profile_space .. general_level_idc, as coded
	ChromaFormatIDC      int
	BitDepthLumaMinus8   int
	BitDepthChromaMinus8 int
	Width, Height        int // after the conformance window

	// What slice headers and picture order counts need.
	ID                    uint32
	SeparateColourPlane   bool
	Log2MaxPicOrderCntLsb int // 4..16
	// MaxNumReorderPics is sps_max_num_reorder_pics of the highest
	// sub-layer.
	MaxNumReorderPics int
}

// ParseSPS parses an SPS NAL unit (with its two-byte header).
func ParseSPS(nal []byte) (*SPSInfo, error) {
	if NALType(nal) != NALSPS || len(nal) < 16 {
		return nil, fmt.Errorf("%w: not an SPS NAL unit (%d bytes)", ErrBadSPS, len(nal))
	}
	rbsp := h264.Unescape(nal[2:])
	if len(rbsp) < 13 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSPS, len(rbsp))
	}
	s := &SPSInfo{}
	s.MaxSubLayersMinus1 = int(rbsp[0]>>1) & 7
	s.TemporalIDNesting = rbsp[0]&1 == 1
	copy(s.GeneralProfileTier[:], rbsp[1:13])
	r := h264.NewBitReader(rbsp[13:])
	n := s.MaxSubLayersMinus1
	profilePresent := make([]bool, n)
	levelPresent := make([]bool, n)
	for i := 0; i < n; i++ {
		profilePresent[i] = r.U(1) == 1
		levelPresent[i] = r.U(1) == 1
	}
	if n > 0 {
		for i := n; i < 8; i++ {
			r.U(2) // reserved_zero_2bits
		}
	}
	for i := 0; i < n; i++ {
		if profilePresent[i] {
			r.U(32)
			r.U(32)
			r.U(24) // 88 bits of sub-layer profile
		}
		if levelPresent[i] {
			r.U(8)
		}
	}
	s.ID = r.UE()
	if s.ID > 15 {
		return nil, fmt.Errorf("%w: sps_seq_parameter_set_id %d", ErrBadSPS, s.ID)
	}
	cf := int(r.UE())
	if cf > 3 {
		return nil, fmt.Errorf("%w: chroma_format_idc %d", ErrBadSPS, cf)
	}
	s.ChromaFormatIDC = cf
	separate := false
	if cf == 3 {
		separate = r.U(1) == 1
	}
	w, h := int(r.UE()), int(r.UE())
	if r.U(1) == 1 { // conformance_window_flag
		l, rt, t, b := int(r.UE()), int(r.UE()), int(r.UE()), int(r.UE())
		subW, subH := 1, 1
		if !separate {
			switch cf {
			case 1:
				subW, subH = 2, 2
			case 2:
				subW = 2
			}
		}
		w -= subW * (l + rt)
		h -= subH * (t + b)
	}
	s.BitDepthLumaMinus8 = int(r.UE())
	s.BitDepthChromaMinus8 = int(r.UE())
	s.SeparateColourPlane = separate
	lsb := r.UE() // log2_max_pic_order_cnt_lsb_minus4
	if lsb > 12 {
		return nil, fmt.Errorf("%w: log2_max_pic_order_cnt_lsb_minus4 %d", ErrBadSPS, lsb)
	}
	s.Log2MaxPicOrderCntLsb = int(lsb) + 4
	from := n
	if r.U(1) == 1 { // sps_sub_layer_ordering_info_present_flag
		from = 0
	}
	for i := from; i <= n; i++ {
		r.UE() // sps_max_dec_pic_buffering_minus1
		s.MaxNumReorderPics = int(r.UE())
		r.UE() // sps_max_latency_increase_plus1
	}
	if r.Err() != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSPS, r.Err())
	}
	if s.MaxNumReorderPics > 16 {
		return nil, fmt.Errorf("%w: sps_max_num_reorder_pics %d", ErrBadSPS, s.MaxNumReorderPics)
	}
	if w <= 0 || h <= 0 || w > 16888 || h > 16888 || s.BitDepthLumaMinus8 > 8 || s.BitDepthChromaMinus8 > 8 {
		return nil, fmt.Errorf("%w: %dx%d, bit depth %d/%d", ErrBadSPS, w, h, s.BitDepthLumaMinus8+8, s.BitDepthChromaMinus8+8)
	}
	s.Width, s.Height = w, h
	return s, nil
}

// BuildConfig builds an hvcC record with 4-byte NAL lengths from VPS, SPS
// and PPS NAL units, laid out as GStreamer's h265parse writes it.
func BuildConfig(vps, sps, pps [][]byte) ([]byte, error) {
	if len(vps) == 0 || len(sps) == 0 || len(pps) == 0 {
		return nil, fmt.Errorf("%w: need a VPS, an SPS and a PPS (have %d, %d, %d)", ErrBadHVCC, len(vps), len(sps), len(pps))
	}
	info, err := ParseSPS(sps[0])
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 64)
	b = append(b, 1)
	b = append(b, info.GeneralProfileTier[:]...)
	b = append(b, 0xF0, 0x00, 0xFC,
		0xFC|byte(info.ChromaFormatIDC), 0xF8|byte(info.BitDepthLumaMinus8), 0xF8|byte(info.BitDepthChromaMinus8),
		0, 0)
	nested := byte(0)
	if info.TemporalIDNesting {
		nested = 1
	}
	b = append(b, byte(info.MaxSubLayersMinus1+1)<<3|nested<<2|3)
	b = append(b, 3)
	for _, arr := range []struct {
		typ  byte
		nals [][]byte
	}{{NALVPS, vps}, {NALSPS, sps}, {NALPPS, pps}} {
		b = append(b, arr.typ, byte(len(arr.nals)>>8), byte(len(arr.nals)))
		for _, n := range arr.nals {
			if len(n) > 0xFFFF {
				return nil, fmt.Errorf("%w: parameter set of %d bytes", ErrBadHVCC, len(n))
			}
			b = append(b, byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
	}
	return b, nil
}

// ParseConfig reads an hvcC record: the size of its NAL unit lengths
// (1, 2 or 4) and the parameter set NAL units of its arrays.
func ParseConfig(b []byte) (lengthSize int, nals [][]byte, err error) {
	if len(b) < 23 || b[0] != 1 {
		return 0, nil, fmt.Errorf("%w: %d-byte record (version %d)", ErrBadHVCC, len(b), firstByte(b))
	}
	lengthSize = int(b[21]&3) + 1
	if lengthSize == 3 {
		return 0, nil, fmt.Errorf("%w: NAL length size 3", ErrBadHVCC)
	}
	off := 23
	for i := 0; i < int(b[22]); i++ {
		if off+3 > len(b) {
			return 0, nil, fmt.Errorf("%w: array %d overruns the record", ErrBadHVCC, i)
		}
		n := int(b[off+1])<<8 | int(b[off+2])
		off += 3
		for j := 0; j < n; j++ {
			if off+2 > len(b) {
				return 0, nil, fmt.Errorf("%w: array %d overruns the record", ErrBadHVCC, i)
			}
			l := int(b[off])<<8 | int(b[off+1])
			off += 2
			if l == 0 || off+l > len(b) {
				return 0, nil, fmt.Errorf("%w: NAL unit of %d bytes overruns the record", ErrBadHVCC, l)
			}
			nals = append(nals, b[off:off+l])
			off += l
		}
	}
	return lengthSize, nals, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}
