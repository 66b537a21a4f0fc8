package h265

import (
	"errors"
	"fmt"

	"github.com/kvsgo/kvsgo/pkg/codec/h264"
)

// NAL unit types of the picture order count computation.
const (
	NALRADLN  = 6
	NALRADLR  = 7
	NALRASLN  = 8
	NALRASLR  = 9
	NALBLAWLP = 16
	NALEOS    = 36
	NALEOB    = 37
)

// Errors of the picture order count computation.
var (
	ErrBadPPS   = errors.New("h265: malformed PPS")
	ErrBadSlice = errors.New("h265: malformed slice segment header")
	// ErrNoParameterSets is wrapped when a slice refers to a PPS or SPS
	// that has not been seen.
	ErrNoParameterSets = errors.New("h265: slice refers to a parameter set not seen")
	// ErrNoSlice is wrapped when an access unit has no first slice segment
	// of a picture.
	ErrNoSlice = errors.New("h265: access unit without the first slice segment of a picture")
)

// PPSInfo is what slice segment headers need from a picture parameter set.
type PPSInfo struct {
	ID, SPSID                     uint32
	DependentSliceSegmentsEnabled bool
	OutputFlagPresent             bool
	NumExtraSliceHeaderBits       int
}

// ParsePPS parses a PPS NAL unit (with its two-byte header) up to
// num_extra_slice_header_bits (Rec. ITU-T H.265 7.3.2.3.1).
func ParsePPS(nal []byte) (*PPSInfo, error) {
	if NALType(nal) != NALPPS || len(nal) < 3 {
		return nil, fmt.Errorf("%w: not a PPS NAL unit (%d bytes)", ErrBadPPS, len(nal))
	}
	r := h264.NewBitReader(h264.Unescape(nal[2:]))
	p := &PPSInfo{ID: r.UE(), SPSID: r.UE()}
	p.DependentSliceSegmentsEnabled = r.U(1) == 1
	p.OutputFlagPresent = r.U(1) == 1
	p.NumExtraSliceHeaderBits = int(r.U(3))
	if r.Err() != nil {
		return nil, fmt.Errorf("%w: %d bytes end early", ErrBadPPS, len(nal))
	}
	if p.ID > 63 || p.SPSID > 15 {
		return nil, fmt.Errorf("%w: pps_pic_parameter_set_id %d, pps_seq_parameter_set_id %d", ErrBadPPS, p.ID, p.SPSID)
	}
	return p, nil
}

// IsIRAP reports whether a NAL unit type is an intra random access point
// picture (BLA, IDR or CRA).
func IsIRAP(typ int) bool { return typ >= NALBLAWLP && typ <= 23 }

// IsVCL reports whether a NAL unit type is a coded slice segment.
func IsVCL(typ int) bool { return typ >= 0 && typ < 32 }

// SliceHeader is the part of a first slice segment header that picture
// order counts need (7.3.6.1).
type SliceHeader struct {
	NALType        int
	TemporalID     int
	PPSID          uint32
	PicOutput      bool
	PicOrderCntLsb uint32
}

// ParseSliceHeader parses the header of the first slice segment of a
// picture with the parameter sets it refers to.
func ParseSliceHeader(nal []byte, sps func(id uint32) *SPSInfo, pps func(id uint32) *PPSInfo) (*SliceHeader, *SPSInfo, error) {
	typ := NALType(nal)
	if !IsVCL(typ) || len(nal) < 3 {
		return nil, nil, fmt.Errorf("%w: NAL unit type %d (%d bytes) is not a coded slice segment", ErrBadSlice, typ, len(nal))
	}
	tid := int(nal[1]&7) - 1
	if tid < 0 {
		return nil, nil, fmt.Errorf("%w: nuh_temporal_id_plus1 0", ErrBadSlice)
	}
	head := nal[2:]
	if len(head) > 1024 {
		head = head[:1024]
	}
	r := h264.NewBitReader(h264.Unescape(head))
	h := &SliceHeader{NALType: typ, TemporalID: tid, PicOutput: true}
	if r.U(1) == 0 {
		return nil, nil, fmt.Errorf("%w: not the first slice segment of its picture", ErrNoSlice)
	}
	if IsIRAP(typ) {
		r.U(1) // no_output_of_prior_pics_flag
	}
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
	// The first slice segment of a picture is never dependent and has no
	// slice_segment_address.
	r.U(p.NumExtraSliceHeaderBits) // slice_reserved_flag[]
	if st := r.UE(); st > 2 {
		return nil, nil, fmt.Errorf("%w: slice_type %d", ErrBadSlice, st)
	}
	if p.OutputFlagPresent {
		h.PicOutput = r.U(1) == 1
	}
	if s.SeparateColourPlane {
		r.U(2) // colour_plane_id
	}
	if typ != NALIDRWRADL && typ != NALIDRNLP {
		h.PicOrderCntLsb = r.U(s.Log2MaxPicOrderCntLsb)
	}
	if r.Err() != nil {
		return nil, nil, fmt.Errorf("%w: %d-byte slice segment ends inside its header", ErrBadSlice, len(nal))
	}
	return h, s, nil
}

// Picture is the order of one coded picture.
type Picture struct {
	POC int64
	// Reset is true for an IRAP picture with NoRaslOutputFlag (an IDR or
	// BLA picture, or a CRA picture first in the stream or after an end of
	// sequence): its counts start afresh and every picture before it in
	// decoding order is output before it.
	Reset bool
	// Output is pic_output_flag; RASL pictures of a reset CRA picture are
	// not output either (they cannot be decoded).
	Output bool
	// MaxNumReorderPics is the active SPS's reorder depth.
	MaxNumReorderPics int
}

// PictureOrder computes picture order counts (Rec. ITU-T H.265 8.3.1) for
// the access units of one stream in decoding order. The zero value is
// ready to use.
type PictureOrder struct {
	sps map[uint32]*SPSInfo
	pps map[uint32]*PPSInfo

	started  bool
	afterEOS bool
	// Of the previous picture with TemporalId 0 that is not a RASL, RADL
	// or sub-layer non-reference picture.
	prevTid0Msb, prevTid0Lsb int64
	// Whether the last IRAP picture had NoRaslOutputFlag (its RASL
	// pictures are not output).
	skipRASL bool
}

// AddParameterSet records an SPS or PPS NAL unit (other NAL units are
// ignored).
func (o *PictureOrder) AddParameterSet(nal []byte) error {
	switch NALType(nal) {
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
// records its parameter sets and returns the order of its picture, from
// its first slice segment. On error the state is left as it was.
func (o *PictureOrder) AccessUnit(nals [][]byte) (Picture, error) {
	var slice []byte
	eos := false
	for _, nal := range nals {
		switch typ := NALType(nal); {
		case typ == NALSPS || typ == NALPPS:
			if err := o.AddParameterSet(nal); err != nil {
				return Picture{}, err
			}
		case typ == NALEOS || typ == NALEOB:
			eos = true
		case IsVCL(typ) && slice == nil:
			slice = nal
		}
	}
	if slice == nil {
		if eos {
			o.afterEOS = true
		}
		return Picture{}, ErrNoSlice
	}
	h, s, err := ParseSliceHeader(slice, func(id uint32) *SPSInfo { return o.sps[id] }, func(id uint32) *PPSInfo { return o.pps[id] })
	if err != nil {
		return Picture{}, err
	}
	pic := o.Next(h, s)
	if eos { // an end of sequence after this picture
		o.afterEOS = true
	}
	return pic, nil
}

// Next computes the order of the picture whose first slice segment header
// is h (with its SPS s) and advances the state.
func (o *PictureOrder) Next(h *SliceHeader, s *SPSInfo) Picture {
	typ := h.NALType
	irap := IsIRAP(typ)
	noRaslOutput := irap && (typ != NALCRA || !o.started || o.afterEOS)
	o.started, o.afterEOS = true, false
	maxLsb := int64(1) << s.Log2MaxPicOrderCntLsb
	lsb := int64(h.PicOrderCntLsb)
	var msb int64
	if !noRaslOutput {
		prevMsb, prevLsb := o.prevTid0Msb, o.prevTid0Lsb
		msb = prevMsb
		switch {
		case lsb < prevLsb && prevLsb-lsb >= maxLsb/2:
			msb = prevMsb + maxLsb
		case lsb > prevLsb && lsb-prevLsb > maxLsb/2:
			msb = prevMsb - maxLsb
		}
	}
	if irap {
		o.skipRASL = noRaslOutput
	}
	rasl := typ == NALRASLN || typ == NALRASLR
	radl := typ == NALRADLN || typ == NALRADLR
	subLayerNonRef := typ <= 14 && typ%2 == 0
	if h.TemporalID == 0 && !rasl && !radl && !subLayerNonRef {
		o.prevTid0Msb, o.prevTid0Lsb = msb, lsb
	}
	return Picture{
		POC:               msb + lsb,
		Reset:             noRaslOutput,
		Output:            h.PicOutput && !(rasl && o.skipRASL),
		MaxNumReorderPics: s.MaxNumReorderPics,
	}
}
