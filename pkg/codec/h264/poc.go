package h264

import (
	"errors"
	"fmt"
)

// Errors of the picture order count computation.
var (
	ErrBadPPS   = errors.New("h264: malformed PPS")
	ErrBadSlice = errors.New("h264: malformed slice header")
	// ErrNoParameterSets is wrapped when a slice refers to a PPS or SPS
	// that has not been seen.
	ErrNoParameterSets = errors.New("h264: slice refers to a parameter set not seen")
	// ErrNoSlice is wrapped when an access unit has no coded slice.
	ErrNoSlice = errors.New("h264: access unit without a coded slice")
)

// PPSInfo is what slice headers need from a picture parameter set.
type PPSInfo struct {
	ID, SPSID                         uint32
	BottomFieldPicOrderInFramePresent bool
	NumSliceGroups                    int
	SliceGroupMapType                 int
	SliceGroupChangeRate              int
	NumRefIdxL0DefaultActive          int
	NumRefIdxL1DefaultActive          int
	WeightedPred                      bool
	WeightedBipredIDC                 int
	RedundantPicCntPresent            bool
}

// ParsePPS parses a PPS NAL unit (with its one-byte NAL header) up to
// redundant_pic_cnt_present_flag (Rec. ITU-T H.264 7.3.2.2).
func ParsePPS(nal []byte) (*PPSInfo, error) {
	if len(nal) < 2 || nal[0]&NALTypeMask != NALPPS {
		return nil, fmt.Errorf("%w: not a PPS NAL unit (%d bytes)", ErrBadPPS, len(nal))
	}
	r := NewBitReader(Unescape(nal[1:]))
	p := &PPSInfo{}
	p.ID, p.SPSID = r.UE(), r.UE()
	if p.ID > 255 || p.SPSID > 31 {
		return nil, fmt.Errorf("%w: pic_parameter_set_id %d, seq_parameter_set_id %d", ErrBadPPS, p.ID, p.SPSID)
	}
	r.U(1) // entropy_coding_mode_flag
	p.BottomFieldPicOrderInFramePresent = r.U(1) == 1
	groups := r.UE() + 1
	if groups > 8 {
		return nil, fmt.Errorf("%w: %d slice groups", ErrBadPPS, groups)
	}
	p.NumSliceGroups = int(groups)
	if groups > 1 {
		p.SliceGroupMapType = int(r.UE())
		switch p.SliceGroupMapType {
		case 0:
			for i := uint32(0); i < groups; i++ {
				r.UE() // run_length_minus1
			}
		case 2:
			for i := uint32(0); i+1 < groups; i++ {
				r.UE() // top_left
				r.UE() // bottom_right
			}
		case 3, 4, 5:
			r.U(1) // slice_group_change_direction_flag
			p.SliceGroupChangeRate = int(r.UE()) + 1
		case 6:
			n := r.UE() + 1
			if n > 1<<20 {
				return nil, fmt.Errorf("%w: %d slice group map units", ErrBadPPS, n)
			}
			bits := ceilLog2(int(groups))
			for i := uint32(0); i < n && r.Err() == nil; i++ {
				r.U(bits)
			}
		case 1:
		default:
			return nil, fmt.Errorf("%w: slice_group_map_type %d", ErrBadPPS, p.SliceGroupMapType)
		}
	}
	l0, l1 := r.UE()+1, r.UE()+1
	if l0 > 32 || l1 > 32 {
		return nil, fmt.Errorf("%w: %d/%d default reference indices", ErrBadPPS, l0, l1)
	}
	p.NumRefIdxL0DefaultActive, p.NumRefIdxL1DefaultActive = int(l0), int(l1)
	p.WeightedPred = r.U(1) == 1
	p.WeightedBipredIDC = int(r.U(2))
	r.SE() // pic_init_qp_minus26
	r.SE() // pic_init_qs_minus26
	r.SE() // chroma_qp_index_offset
	r.U(1) // deblocking_filter_control_present_flag
	r.U(1) // constrained_intra_pred_flag
	p.RedundantPicCntPresent = r.U(1) == 1
	if r.Err() != nil {
		return nil, fmt.Errorf("%w: %d bytes end early", ErrBadPPS, len(nal))
	}
	return p, nil
}

func ceilLog2(n int) int {
	b := 0
	for 1<<b < n {
		b++
	}
	return b
}

// Slice types (slice_type % 5).
const (
	SliceP  = 0
	SliceB  = 1
	SliceI  = 2
	SliceSP = 3
	SliceSI = 4
)

// SliceHeader is the part of a slice header that picture order counts need
// (7.3.3).
type SliceHeader struct {
	NALRefIDC              int
	IDR                    bool
	SliceType              int // 0..4 (slice_type % 5)
	PPSID                  uint32
	FrameNum               uint32
	FieldPic, BottomField  bool
	PicOrderCntLsb         uint32
	DeltaPicOrderCntBottom int32
	DeltaPicOrderCnt       [2]int32
	// MMCO5 reports a memory_management_control_operation equal to 5 in
	// dec_ref_pic_marking().
	MMCO5 bool
}

// ParseSliceHeader parses the header of a coded slice NAL unit (types 1 and
// 5) with the parameter sets it refers to.
func ParseSliceHeader(nal []byte, sps func(id uint32) *SPSInfo, pps func(id uint32) *PPSInfo) (*SliceHeader, *SPSInfo, error) {
	if len(nal) < 2 {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrBadSlice, len(nal))
	}
	typ := nal[0] & NALTypeMask
	if typ != NALSlice && typ != NALIDR {
		return nil, nil, fmt.Errorf("%w: NAL unit type %d is not a coded slice", ErrBadSlice, typ)
	}
	// A header is at most a few hundred bytes: unescape only that much.
	head := nal[1:]
	if len(head) > 1024 {
		head = head[:1024]
	}
	r := NewBitReader(Unescape(head))
	h := &SliceHeader{NALRefIDC: int(nal[0]>>5) & 3, IDR: typ == NALIDR}
	r.UE() // first_mb_in_slice
	st := r.UE()
	if st > 9 {
		return nil, nil, fmt.Errorf("%w: slice_type %d", ErrBadSlice, st)
	}
	h.SliceType = int(st % 5)
	h.PPSID = r.UE()
	if r.Err() != nil {
		return nil, nil, fmt.Errorf("%w: ends in its first fields", ErrBadSlice)
	}
	p := pps(h.PPSID)
	if p == nil {
		return nil, nil, fmt.Errorf("%w: PPS %d", ErrNoParameterSets, h.PPSID)
	}
	s := sps(p.SPSID)
	if s == nil {
		return nil, nil, fmt.Errorf("%w: SPS %d (of PPS %d)", ErrNoParameterSets, p.SPSID, p.ID)
	}
	if s.SeparateColourPlane {
		r.U(2) // colour_plane_id
	}
	h.FrameNum = r.U(s.Log2MaxFrameNum)
	if !s.FrameMbsOnly {
		h.FieldPic = r.U(1) == 1
		if h.FieldPic {
			h.BottomField = r.U(1) == 1
		}
	}
	if h.IDR {
		r.UE() // idr_pic_id
	}
	switch s.PicOrderCntType {
	case 0:
		h.PicOrderCntLsb = r.U(s.Log2MaxPicOrderCntLsb)
		if p.BottomFieldPicOrderInFramePresent && !h.FieldPic {
			h.DeltaPicOrderCntBottom = r.SE()
		}
	case 1:
		if !s.DeltaPicOrderAlwaysZero {
			h.DeltaPicOrderCnt[0] = r.SE()
			if p.BottomFieldPicOrderInFramePresent && !h.FieldPic {
				h.DeltaPicOrderCnt[1] = r.SE()
			}
		}
	}
	if h.NALRefIDC != 0 {
		if err := h.readToMarking(r, s, p); err != nil {
			return nil, nil, err
		}
	}
	if r.Err() != nil {
		return nil, nil, fmt.Errorf("%w: %d-byte slice ends inside its header", ErrBadSlice, len(nal))
	}
	return h, s, nil
}

// readToMarking skips from redundant_pic_cnt to dec_ref_pic_marking() and
// reads whether the latter holds memory_management_control_operation 5.
func (h *SliceHeader) readToMarking(r *BitReader, s *SPSInfo, p *PPSInfo) error {
	if p.RedundantPicCntPresent {
		r.UE()
	}
	if h.SliceType == SliceB {
		r.U(1) // direct_spatial_mv_pred_flag
	}
	l0, l1 := p.NumRefIdxL0DefaultActive, p.NumRefIdxL1DefaultActive
	if h.SliceType == SliceP || h.SliceType == SliceSP || h.SliceType == SliceB {
		if r.U(1) == 1 { // num_ref_idx_active_override_flag
			l0 = int(r.UE()) + 1
			if h.SliceType == SliceB {
				l1 = int(r.UE()) + 1
			}
		}
	}
	if l0 > 32 || l1 > 32 {
		return fmt.Errorf("%w: %d/%d active reference indices", ErrBadSlice, l0, l1)
	}
	// ref_pic_list_modification() (7.3.3.1)
	lists := 0
	switch h.SliceType {
	case SliceP, SliceSP:
		lists = 1
	case SliceB:
		lists = 2
	}
	for l := 0; l < lists; l++ {
		if r.U(1) == 0 {
			continue
		}
		for n := 0; ; n++ {
			op := r.UE()
			if op == 3 || r.Err() != nil {
				break
			}
			if op > 5 || n > 64 {
				return fmt.Errorf("%w: ref_pic_list_modification op %d (%d ops)", ErrBadSlice, op, n)
			}
			r.UE() // abs_diff_pic_num_minus1 or long_term_pic_num (or abs_diff_view_idx_minus1)
		}
	}
	// pred_weight_table() (7.3.3.2)
	if p.WeightedPred && (h.SliceType == SliceP || h.SliceType == SliceSP) || p.WeightedBipredIDC == 1 && h.SliceType == SliceB {
		r.UE() // luma_log2_weight_denom
		chroma := s.ChromaArrayType() != 0
		if chroma {
			r.UE()
		}
		for _, n := range []int{l0, l1}[:lists] {
			for i := 0; i < n && r.Err() == nil; i++ {
				if r.U(1) == 1 {
					r.SE()
					r.SE()
				}
				if chroma && r.U(1) == 1 {
					r.SE()
					r.SE()
					r.SE()
					r.SE()
				}
			}
		}
	}
	// dec_ref_pic_marking() (7.3.3.3)
	if h.IDR {
		r.U(2) // no_output_of_prior_pics_flag, long_term_reference_flag
		return nil
	}
	if r.U(1) == 0 { // adaptive_ref_pic_marking_mode_flag
		return nil
	}
	for n := 0; ; n++ {
		op := r.UE()
		if op == 0 || r.Err() != nil {
			return nil
		}
		if op > 6 || n > 66 {
			return fmt.Errorf("%w: memory_management_control_operation %d (%d ops)", ErrBadSlice, op, n)
		}
		if op == 1 || op == 3 {
			r.UE() // difference_of_pic_nums_minus1
		}
		if op == 2 {
			r.UE() // long_term_pic_num
		}
		if op == 3 || op == 6 {
			r.UE() // long_term_frame_idx
		}
		if op == 4 {
			r.UE() // max_long_term_frame_idx_plus1
		}
		if op == 5 {
			h.MMCO5 = true
		}
	}
}

// Picture is the order of one coded picture (a frame or a field).
type Picture struct {
	// POC is the picture order count: of the frame (the lesser of its two
	// fields' counts) or of the field. After a memory management operation
	// 5 it is the count relative to the picture itself (0 for a frame).
	POC int64
	// Reset is true for a picture that starts a new order: an IDR picture
	// or one with memory_management_control_operation 5. Every picture
	// before it in decoding order is output before it.
	Reset bool
	Field bool
	// FrameMbsOnly echoes the SPS: a stream of frames only.
	FrameMbsOnly bool
	// POCType is the SPS's pic_order_cnt_type.
	POCType int
	// MaxNumReorderFrames is the active SPS's reorder depth, -1 if the SPS
	// does not declare it.
	MaxNumReorderFrames int
}

// PictureOrder computes picture order counts (Rec. ITU-T H.264 8.2.1) for
// the access units of one stream in decoding order. It keeps the parameter
// sets it has seen and the state the computation carries from picture to
// picture. The zero value is ready to use.
type PictureOrder struct {
	sps map[uint32]*SPSInfo
	pps map[uint32]*PPSInfo

	started bool
	// Type 0: of the previous reference picture.
	prevRefMsb, prevRefLsb int64
	prevRefBottomField     bool
	prevRefMMCO5           bool
	prevRefTop             int64 // its TopFieldOrderCnt after any MMCO5 reset
	// Types 1 and 2: of the previous picture.
	prevFrameNumOffset int64
	prevFrameNum       int64
	prevMMCO5          bool
}

// AddParameterSet records an SPS or PPS NAL unit (other NAL units are
// ignored).
func (o *PictureOrder) AddParameterSet(nal []byte) error {
	if len(nal) == 0 {
		return nil
	}
	switch nal[0] & NALTypeMask {
	case NALSPS:
		s, err := ParseSPS(nal)
		if err != nil {
			return err
		}
		if o.sps == nil {
			o.sps = map[uint32]*SPSInfo{}
		}
		o.sps[s.ID] = s
	case NALPPS:
		p, err := ParsePPS(nal)
		if err != nil {
			return err
		}
		if o.pps == nil {
			o.pps = map[uint32]*PPSInfo{}
		}
		o.pps[p.ID] = p
	}
	return nil
}

// AccessUnit takes the NAL units of one access unit in decoding order: it
// records its parameter sets and returns the order of its primary coded
// picture, from its first slice. On error the state is left as it was, so
// that the next access unit is computed as if this one had not been seen
// (a reference picture lost in this way shifts later counts only until the
// next IDR picture).
func (o *PictureOrder) AccessUnit(nals [][]byte) (Picture, error) {
	var slice []byte
	for _, nal := range nals {
		if len(nal) == 0 {
			continue
		}
		switch nal[0] & NALTypeMask {
		case NALSPS, NALPPS:
			if err := o.AddParameterSet(nal); err != nil {
				return Picture{}, err
			}
		case NALSlice, NALIDR:
			if slice == nil {
				slice = nal
			}
		}
	}
	if slice == nil {
		return Picture{}, ErrNoSlice
	}
	h, s, err := ParseSliceHeader(slice, func(id uint32) *SPSInfo { return o.sps[id] }, func(id uint32) *PPSInfo { return o.pps[id] })
	if err != nil {
		return Picture{}, err
	}
	return o.Next(h, s), nil
}

// Next computes the order of the picture whose first slice header is h
// (with its SPS s) and advances the state.
func (o *PictureOrder) Next(h *SliceHeader, s *SPSInfo) Picture {
	var top, bottom int64
	switch s.PicOrderCntType {
	case 0:
		top, bottom = o.type0(h, s)
	default:
		top, bottom = o.type12(h, s)
	}
	pic := Picture{Reset: h.IDR || h.MMCO5, Field: h.FieldPic, FrameMbsOnly: s.FrameMbsOnly, POCType: s.PicOrderCntType, MaxNumReorderFrames: s.MaxNumReorderFrames}
	// After an MMCO5 the picture's counts are taken relative to itself
	// (8.2.1, tempPicOrderCnt).
	if h.MMCO5 {
		switch {
		case !h.FieldPic:
			t := min(top, bottom)
			top, bottom = top-t, bottom-t
		case h.BottomField:
			bottom = 0
		default:
			top = 0
		}
	}
	switch {
	case !h.FieldPic:
		pic.POC = min(top, bottom)
	case h.BottomField:
		pic.POC = bottom
	default:
		pic.POC = top
	}
	// State for the next picture.
	o.started = true
	if h.NALRefIDC != 0 {
		o.prevRefMMCO5 = h.MMCO5
		o.prevRefBottomField = h.FieldPic && h.BottomField
		o.prevRefTop = top
	}
	o.prevMMCO5 = h.MMCO5
	if h.MMCO5 {
		o.prevFrameNum = 0
	}
	return pic
}

// type0 is 8.2.1.1.
func (o *PictureOrder) type0(h *SliceHeader, s *SPSInfo) (top, bottom int64) {
	var prevMsb, prevLsb int64
	switch {
	case h.IDR || !o.started:
	case o.prevRefMMCO5:
		if !o.prevRefBottomField {
			prevLsb = o.prevRefTop
		}
	default:
		prevMsb, prevLsb = o.prevRefMsb, o.prevRefLsb
	}
	maxLsb := int64(1) << s.Log2MaxPicOrderCntLsb
	lsb := int64(h.PicOrderCntLsb)
	msb := prevMsb
	switch {
	case lsb < prevLsb && prevLsb-lsb >= maxLsb/2:
		msb = prevMsb + maxLsb
	case lsb > prevLsb && lsb-prevLsb > maxLsb/2:
		msb = prevMsb - maxLsb
	}
	if !h.FieldPic {
		top = msb + lsb
		bottom = top + int64(h.DeltaPicOrderCntBottom)
	} else if h.BottomField {
		bottom = msb + lsb
	} else {
		top = msb + lsb
	}
	if h.NALRefIDC != 0 {
		o.prevRefMsb, o.prevRefLsb = msb, lsb
		if h.MMCO5 {
			// Only prevRefTop is used after an MMCO5; keep the others
			// consistent with a reset all the same.
			o.prevRefMsb, o.prevRefLsb = 0, 0
		}
	}
	return top, bottom
}

// type12 is 8.2.1.2 and 8.2.1.3.
func (o *PictureOrder) type12(h *SliceHeader, s *SPSInfo) (top, bottom int64) {
	maxFrameNum := int64(1) << s.Log2MaxFrameNum
	frameNum := int64(h.FrameNum)
	prevOffset := o.prevFrameNumOffset
	if o.prevMMCO5 {
		prevOffset = 0
	}
	var offset int64
	switch {
	case h.IDR || !o.started:
	case o.prevFrameNum > frameNum:
		offset = prevOffset + maxFrameNum
	default:
		offset = prevOffset
	}
	o.prevFrameNumOffset, o.prevFrameNum = offset, frameNum
	if h.MMCO5 {
		o.prevFrameNumOffset = 0
	}
	if s.PicOrderCntType == 2 {
		var t int64
		switch {
		case h.IDR:
		case h.NALRefIDC == 0:
			t = 2*(offset+frameNum) - 1
		default:
			t = 2 * (offset + frameNum)
		}
		return t, t
	}
	n := int64(len(s.OffsetForRefFrame))
	var abs int64
	if n != 0 {
		abs = offset + frameNum
	}
	if h.NALRefIDC == 0 && abs > 0 {
		abs--
	}
	var expected int64
	if abs > 0 {
		var perCycle int64
		for _, d := range s.OffsetForRefFrame {
			perCycle += int64(d)
		}
		cycle, inCycle := (abs-1)/n, (abs-1)%n
		expected = cycle * perCycle
		for i := int64(0); i <= inCycle; i++ {
			expected += int64(s.OffsetForRefFrame[i])
		}
	}
	if h.NALRefIDC == 0 {
		expected += int64(s.OffsetForNonRefPic)
	}
	switch {
	case !h.FieldPic:
		top = expected + int64(h.DeltaPicOrderCnt[0])
		bottom = top + int64(s.OffsetForTopToBottomField) + int64(h.DeltaPicOrderCnt[1])
	case h.BottomField:
		bottom = expected + int64(s.OffsetForTopToBottomField) + int64(h.DeltaPicOrderCnt[0])
	default:
		top = expected + int64(h.DeltaPicOrderCnt[0])
	}
	return top, bottom
}
