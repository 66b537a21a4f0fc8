// Package h264 converts H.264 between Annex-B byte-stream and AVCC
// (length-prefixed) forms, builds and parses the avcC decoder configuration
// record (Matroska CodecPrivate), reads picture size from an SPS and
// computes the picture order count of each access unit from its slice
// header (PictureOrder).
//
// It imports the standard library only.
package h264

import (
	"errors"
	"fmt"
)

// NAL unit types used here.
const (
	NALSlice    = 1
	NALIDR      = 5
	NALSEI      = 6
	NALSPS      = 7
	NALPPS      = 8
	NALAUD      = 9
	NALSPSExt   = 13
	NALTypeMask = 0x1F
)

// Errors.
var (
	ErrNoStartCode  = errors.New("h264: no Annex-B start code")
	ErrTruncatedNAL = errors.New("h264: truncated NAL unit")
	ErrBadAVCC      = errors.New("h264: malformed avcC record")
	ErrBadSPS       = errors.New("h264: malformed SPS")
)

// IsAnnexB reports whether b starts with a 3- or 4-byte start code.
func IsAnnexB(b []byte) bool {
	return len(b) >= 3 && b[0] == 0 && b[1] == 0 && (b[2] == 1 || (b[2] == 0 && len(b) >= 4 && b[3] == 1))
}

// SplitAnnexB calls fn for each NAL unit of an Annex-B buffer (without start
// codes or trailing zero bytes). It returns ErrNoStartCode when b does not
// start with a start code.
func SplitAnnexB(b []byte, fn func(nal []byte) error) error {
	i := startCode(b, 0)
	if i < 0 || !IsAnnexB(b[:min(len(b), 4)]) {
		return ErrNoStartCode
	}
	for i < len(b) {
		next := startCode(b, i)
		end := len(b)
		if next >= 0 {
			end = next - 3
			if end > i && b[end-1] == 0 { // 4-byte start code
				end--
			}
		}
		nal := b[i:end]
		for len(nal) > 0 && nal[len(nal)-1] == 0 { // trailing_zero_8bits
			nal = nal[:len(nal)-1]
		}
		if len(nal) > 0 {
			if err := fn(nal); err != nil {
				return err
			}
		}
		if next < 0 {
			break
		}
		i = next
	}
	return nil
}

// startCode returns the index just after the first 00 00 01 at or after from,
// or -1.
func startCode(b []byte, from int) int {
	for i := from; i+2 < len(b); i++ {
		if b[i+2] > 1 {
			i += 2
			continue
		}
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			return i + 3
		}
	}
	return -1
}

// AppendAVCC appends the NAL units of an Annex-B access unit to dst, each
// prefixed by its 4-byte big-endian length.
func AppendAVCC(dst, annexB []byte) ([]byte, error) {
	err := SplitAnnexB(annexB, func(nal []byte) error {
		n := len(nal)
		dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		dst = append(dst, nal...)
		return nil
	})
	return dst, err
}

// SplitAVCC calls fn for each NAL unit of a length-prefixed buffer whose
// lengths are lengthSize (1, 2 or 4) bytes.
func SplitAVCC(b []byte, lengthSize int, fn func(nal []byte) error) error {
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return fmt.Errorf("h264: NAL length size %d not 1, 2 or 4", lengthSize)
	}
	for off := 0; off < len(b); {
		if off+lengthSize > len(b) {
			return fmt.Errorf("%w: length field at byte %d of %d", ErrTruncatedNAL, off, len(b))
		}
		n := 0
		for _, c := range b[off : off+lengthSize] {
			n = n<<8 | int(c)
		}
		off += lengthSize
		if n == 0 || n > len(b)-off {
			return fmt.Errorf("%w: NAL of %d bytes at byte %d of %d", ErrTruncatedNAL, n, off, len(b))
		}
		if err := fn(b[off : off+n]); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// Config is an AVC decoder configuration record (ISO/IEC 14496-15 avcC).
type Config struct {
	Profile       byte
	ProfileCompat byte
	Level         byte
	NALLengthSize int
	SPS           [][]byte
	PPS           [][]byte
}

// ParseConfig parses an avcC record.
func ParseConfig(b []byte) (*Config, error) {
	if len(b) < 7 || b[0] != 1 {
		return nil, fmt.Errorf("%w: %d bytes, version %v", ErrBadAVCC, len(b), firstByte(b))
	}
	c := &Config{Profile: b[1], ProfileCompat: b[2], Level: b[3], NALLengthSize: int(b[4]&3) + 1}
	if c.NALLengthSize == 3 {
		return nil, fmt.Errorf("%w: NAL length size 3", ErrBadAVCC)
	}
	off := 6
	read := func(count int) ([][]byte, error) {
		var out [][]byte
		for i := 0; i < count; i++ {
			if off+2 > len(b) {
				return nil, fmt.Errorf("%w: truncated parameter set length", ErrBadAVCC)
			}
			n := int(b[off])<<8 | int(b[off+1])
			off += 2
			if n == 0 || off+n > len(b) {
				return nil, fmt.Errorf("%w: parameter set of %d bytes overruns the record", ErrBadAVCC, n)
			}
			out = append(out, b[off:off+n])
			off += n
		}
		return out, nil
	}
	var err error
	if c.SPS, err = read(int(b[5] & 0x1F)); err != nil {
		return nil, err
	}
	if off >= len(b) {
		return nil, fmt.Errorf("%w: missing PPS count", ErrBadAVCC)
	}
	n := int(b[off])
	off++
	if c.PPS, err = read(n); err != nil {
		return nil, err
	}
	if len(c.SPS) == 0 {
		return nil, fmt.Errorf("%w: no SPS", ErrBadAVCC)
	}
	return c, nil
}

func firstByte(b []byte) any {
	if len(b) == 0 {
		return "none"
	}
	return b[0]
}

// BuildConfig builds an avcC record with 4-byte NAL lengths from SPS and PPS
// NAL units, laid out as the official SDK builds it for Annex-B input
// (without the optional High-profile extension, as x264 and h264parse do).
func BuildConfig(sps, pps [][]byte) ([]byte, error) {
	if len(sps) == 0 || len(pps) == 0 {
		return nil, fmt.Errorf("%w: need at least one SPS and one PPS (have %d, %d)", ErrBadAVCC, len(sps), len(pps))
	}
	if len(sps[0]) < 4 {
		return nil, fmt.Errorf("%w: SPS of %d bytes", ErrBadSPS, len(sps[0]))
	}
	if len(sps) > 31 || len(pps) > 255 {
		return nil, fmt.Errorf("%w: too many parameter sets", ErrBadAVCC)
	}
	b := []byte{1, sps[0][1], sps[0][2], sps[0][3], 0xFF, 0xE0 | byte(len(sps))}
	for _, s := range sps {
		b = append(b, byte(len(s)>>8), byte(len(s)))
		b = append(b, s...)
	}
	b = append(b, byte(len(pps)))
	for _, p := range pps {
		b = append(b, byte(len(p)>>8), byte(len(p)))
		b = append(b, p...)
	}
	if _, err := ParseSPS(sps[0]); err != nil {
		return nil, err
	}
	return b, nil
}
