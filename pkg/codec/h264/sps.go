package h264

import "fmt"

// SPSInfo is what kvsgo needs from a sequence parameter set.
type SPSInfo struct {
	ProfileIDC      byte
	LevelIDC        byte
	ChromaFormatIDC byte
	BitDepthLuma    int
	BitDepthChroma  int
	Width           int // after cropping
	Height          int

	// What slice headers and picture order counts need.
	ID                        uint32
	SeparateColourPlane       bool
	Log2MaxFrameNum           int // 4..16
	PicOrderCntType           int // 0, 1 or 2
	Log2MaxPicOrderCntLsb     int // 4..16 (type 0)
	DeltaPicOrderAlwaysZero   bool
	OffsetForNonRefPic        int32
	OffsetForTopToBottomField int32
	OffsetForRefFrame         []int32 // one per frame of the POC cycle (type 1)
	MaxNumRefFrames           int
	FrameMbsOnly              bool
	// MaxNumReorderFrames is the VUI's max_num_reorder_frames, 0 for
	// Baseline and intra-only profiles that do not declare it, or -1 when
	// the SPS does not say (or its VUI is unreadable).
	MaxNumReorderFrames int
}

// ChromaArrayType is chroma_format_idc, or 0 with separate colour planes.
func (s *SPSInfo) ChromaArrayType() int {
	if s.SeparateColourPlane {
		return 0
	}
	return int(s.ChromaFormatIDC)
}

// HighProfile reports whether the profile carries chroma_format_idc and bit
// depths (and so the avcC extension).
func (s *SPSInfo) HighProfile() bool {
	switch s.ProfileIDC {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		return true
	}
	return false
}

// Unescape removes emulation-prevention bytes (00 00 03 → 00 00).
func Unescape(nal []byte) []byte {
	out := make([]byte, 0, len(nal))
	zeros := 0
	for _, c := range nal {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
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

// BitReader reads the RBSP bit syntax (u(n), ue(v), se(v)).
type BitReader struct {
	b   []byte
	pos int
	err error
}

// NewBitReader reads from an unescaped RBSP.
func NewBitReader(rbsp []byte) *BitReader { return &BitReader{b: rbsp} }

// Err returns the first read past the end.
func (r *BitReader) Err() error { return r.err }

// U reads n (≤ 32) bits.
func (r *BitReader) U(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		if r.pos >= len(r.b)*8 {
			if r.err == nil {
				r.err = fmt.Errorf("%w: read past the end at bit %d", ErrBadSPS, r.pos)
			}
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8))&1
		r.pos++
	}
	return v
}

// UE reads an unsigned Exp-Golomb code.
func (r *BitReader) UE() uint32 {
	zeros := 0
	for r.U(1) == 0 {
		zeros++
		if zeros > 31 || r.err != nil {
			if r.err == nil {
				r.err = fmt.Errorf("%w: Exp-Golomb code longer than 32 bits at bit %d", ErrBadSPS, r.pos)
			}
			return 0
		}
	}
	return (1<<zeros - 1) + r.U(zeros)
}

// SE reads a signed Exp-Golomb code.
func (r *BitReader) SE() int32 {
	k := r.UE()
	if k&1 == 1 {
		return int32((k + 1) / 2)
	}
	return -int32(k / 2)
}

// ParseSPS parses an SPS NAL unit (with its one-byte NAL header).
func ParseSPS(nal []byte) (*SPSInfo, error) {
	if len(nal) < 4 || nal[0]&NALTypeMask != NALSPS {
		return nil, fmt.Errorf("%w: not an SPS NAL unit (%d bytes)", ErrBadSPS, len(nal))
	}
	r := NewBitReader(Unescape(nal[1:]))
	s := &SPSInfo{ChromaFormatIDC: 1, BitDepthLuma: 8, BitDepthChroma: 8, MaxNumReorderFrames: -1}
	s.ProfileIDC = byte(r.U(8))
	constraints := r.U(8)
	s.LevelIDC = byte(r.U(8))
	s.ID = r.UE()
	if s.ID > 31 {
		return nil, fmt.Errorf("%w: seq_parameter_set_id %d", ErrBadSPS, s.ID)
	}
	if s.HighProfile() {
		if err := readChromaAndScaling(r, s); err != nil {
			return nil, err
		}
	}
	v := r.UE() // log2_max_frame_num_minus4
	if v > 12 {
		return nil, fmt.Errorf("%w: log2_max_frame_num_minus4 %d", ErrBadSPS, v)
	}
	s.Log2MaxFrameNum = int(v) + 4
	if err := readPicOrderCount(r, s); err != nil {
		return nil, err
	}
	s.MaxNumRefFrames = int(r.UE())
	r.U(1) // gaps_in_frame_num_value_allowed_flag
	wMbs := r.UE() + 1
	hMapUnits := r.UE() + 1
	frameMbsOnly := r.U(1)
	s.FrameMbsOnly = frameMbsOnly == 1
	if frameMbsOnly == 0 {
		r.U(1) // mb_adaptive_frame_field_flag
	}
	r.U(1) // direct_8x8_inference_flag

	// frame_crop_{left,right,top,bottom}_offset
	var crop [4]uint32
	if r.U(1) == 1 {
		crop = [4]uint32{r.UE(), r.UE(), r.UE(), r.UE()}
	}
	if r.Err() != nil {
		return nil, r.Err()
	}
	if r.U(1) == 1 { // vui_parameters_present_flag
		// Best effort: an unreadable VUI leaves the reorder depth unknown
		// and fails nothing that needs only the picture size.
		if n, ok := readVUIReorder(r); ok {
			s.MaxNumReorderFrames = n
		}
	}
	if s.MaxNumReorderFrames < 0 {
		s.MaxNumReorderFrames = inferredReorder(s.ProfileIDC, constraints)
	}
	if wMbs > 1024 || hMapUnits > 1024 {
		return nil, fmt.Errorf("%w: %dx%d macroblocks", ErrBadSPS, wMbs, hMapUnits)
	}
	if err := s.setSize(wMbs, hMapUnits, frameMbsOnly, crop); err != nil {
		return nil, err
	}
	return s, nil
}

// readChromaAndScaling reads the High profiles' fields: chroma_format_idc,
// separate_colour_plane_flag, the bit depths, and the scaling matrices
// (skipped).
func readChromaAndScaling(r *BitReader, s *SPSInfo) error {
	cf := r.UE()
	if cf > 3 {
		return fmt.Errorf("%w: chroma_format_idc %d", ErrBadSPS, cf)
	}
	s.ChromaFormatIDC = byte(cf)
	if cf == 3 {
		s.SeparateColourPlane = r.U(1) == 1
	}
	s.BitDepthLuma = int(r.UE()) + 8
	s.BitDepthChroma = int(r.UE()) + 8
	if s.BitDepthLuma > 14 || s.BitDepthChroma > 14 {
		return fmt.Errorf("%w: bit depth %d/%d", ErrBadSPS, s.BitDepthLuma, s.BitDepthChroma)
	}
	r.U(1)           // qpprime_y_zero_transform_bypass_flag
	if r.U(1) == 1 { // seq_scaling_matrix_present_flag
		n := 8
		if cf == 3 {
			n = 12
		}
		for i := 0; i < n; i++ {
			if r.U(1) == 1 {
				size := 16
				if i >= 6 {
					size = 64
				}
				skipScalingList(r, size)
			}
		}
	}
	return nil
}

// readPicOrderCount reads pic_order_cnt_type and the fields that go with
// it.
func readPicOrderCount(r *BitReader, s *SPSInfo) error {
	poc := r.UE()
	s.PicOrderCntType = int(poc)
	switch poc {
	case 0:
		v := r.UE()
		if v > 12 {
			return fmt.Errorf("%w: log2_max_pic_order_cnt_lsb_minus4 %d", ErrBadSPS, v)
		}
		s.Log2MaxPicOrderCntLsb = int(v) + 4
	case 1:
		s.DeltaPicOrderAlwaysZero = r.U(1) == 1
		s.OffsetForNonRefPic = r.SE()
		s.OffsetForTopToBottomField = r.SE()
		n := r.UE()
		if n > 255 {
			return fmt.Errorf("%w: %d ref frames in POC cycle", ErrBadSPS, n)
		}
		s.OffsetForRefFrame = make([]int32, n)
		for i := range s.OffsetForRefFrame {
			s.OffsetForRefFrame[i] = r.SE()
		}
	case 2:
	default:
		return fmt.Errorf("%w: pic_order_cnt_type %d", ErrBadSPS, poc)
	}
	return nil
}

// inferredReorder is max_num_reorder_frames where the VUI does not give
// it: 0 for intra-only profiles (E.2.1) and for Baseline, which has no B
// slices and whose encoders output in decoding order; else -1 (unknown).
func inferredReorder(profile byte, constraints uint32) int {
	switch profile {
	case 44, 66:
		return 0
	case 86, 100, 110, 122, 244:
		if constraints&0x10 != 0 { // constraint_set3_flag
			return 0
		}
	}
	return -1
}

// setSize sets Width and Height from the size in macroblocks and the
// frame cropping offsets (left, right, top, bottom), in the units that the
// chroma format and field coding give them.
func (s *SPSInfo) setSize(wMbs, hMapUnits, frameMbsOnly uint32, crop [4]uint32) error {
	cropX, cropY := uint32(1), 2-frameMbsOnly
	if s.ChromaFormatIDC != 0 && !s.SeparateColourPlane {
		subW, subH := uint32(2), uint32(2)
		switch s.ChromaFormatIDC {
		case 2:
			subH = 1
		case 3:
			subW, subH = 1, 1
		}
		cropX, cropY = subW, subH*(2-frameMbsOnly)
	}
	w := int(wMbs*16) - int(cropX*(crop[0]+crop[1]))
	h := int((2-frameMbsOnly)*hMapUnits*16) - int(cropY*(crop[2]+crop[3]))
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: cropping leaves %dx%d", ErrBadSPS, w, h)
	}
	s.Width, s.Height = w, h
	return nil
}

// readVUIReorder reads vui_parameters() up to max_num_reorder_frames
// (Rec. ITU-T H.264 E.1.1). ok is false when the VUI has no bitstream
// restriction or cannot be read.
func readVUIReorder(r *BitReader) (n int, ok bool) {
	if r.U(1) == 1 { // aspect_ratio_info_present_flag
		if r.U(8) == 255 { // Extended_SAR
			r.U(16)
			r.U(16)
		}
	}
	if r.U(1) == 1 { // overscan_info_present_flag
		r.U(1)
	}
	if r.U(1) == 1 { // video_signal_type_present_flag
		r.U(3)
		r.U(1)
		if r.U(1) == 1 { // colour_description_present_flag
			r.U(24)
		}
	}
	if r.U(1) == 1 { // chroma_loc_info_present_flag
		r.UE()
		r.UE()
	}
	if r.U(1) == 1 { // timing_info_present_flag
		r.U(32)
		r.U(32)
		r.U(1)
	}
	nal := r.U(1) == 1
	if nal && !skipHRD(r) {
		return 0, false
	}
	vcl := r.U(1) == 1
	if vcl && !skipHRD(r) {
		return 0, false
	}
	if nal || vcl {
		r.U(1) // low_delay_hrd_flag
	}
	r.U(1)           // pic_struct_present_flag
	if r.U(1) == 0 { // bitstream_restriction_flag
		return 0, false
	}
	r.U(1)      // motion_vectors_over_pic_boundaries_flag
	r.UE()      // max_bytes_per_pic_denom
	r.UE()      // max_bits_per_mb_denom
	r.UE()      // log2_max_mv_length_horizontal
	r.UE()      // log2_max_mv_length_vertical
	v := r.UE() // max_num_reorder_frames
	r.UE()      // max_dec_frame_buffering
	if r.Err() != nil || v > 16 {
		return 0, false
	}
	return int(v), true
}

// skipHRD skips hrd_parameters() (E.1.2).
func skipHRD(r *BitReader) bool {
	n := r.UE() + 1 // cpb_cnt_minus1
	if n > 32 {
		return false
	}
	r.U(8) // bit_rate_scale, cpb_size_scale
	for i := uint32(0); i < n && r.Err() == nil; i++ {
		r.UE()
		r.UE()
		r.U(1)
	}
	r.U(20) // four 5-bit lengths
	return r.Err() == nil
}

func skipScalingList(r *BitReader, size int) {
	last, next := int32(8), int32(8)
	for j := 0; j < size && r.Err() == nil; j++ {
		if next != 0 {
			next = (last + r.SE() + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
}
