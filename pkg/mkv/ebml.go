// Package mkv writes and reads the subset of EBML/Matroska that Kinesis Video
// Streams uses: the producer layout of the official SDK (EBML header, a
// Segment of unknown size, Info, Tracks, then Tags and unknown-size Clusters of
// SimpleBlocks) and the GetMedia layout (the same, concatenated per fragment).
//
// It imports the standard library only: no GStreamer, no AWS SDK, no cgo.
package mkv

import (
	"errors"
	"fmt"
)

// Element IDs, with their class markers, as they appear on the wire.
const (
	IDEBML               uint32 = 0x1A45DFA3
	IDEBMLVersion        uint32 = 0x4286
	IDEBMLReadVersion    uint32 = 0x42F7
	IDEBMLMaxIDLength    uint32 = 0x42F2
	IDEBMLMaxSizeLength  uint32 = 0x42F3
	IDDocType            uint32 = 0x4282
	IDDocTypeVersion     uint32 = 0x4287
	IDDocTypeReadVersion uint32 = 0x4285
	IDVoid               uint32 = 0xEC
	IDCRC32              uint32 = 0xBF

	IDSegment       uint32 = 0x18538067
	IDSeekHead      uint32 = 0x114D9B74
	IDInfo          uint32 = 0x1549A966
	IDSegmentUID    uint32 = 0x73A4
	IDTimecodeScale uint32 = 0x2AD7B1
	IDDuration      uint32 = 0x4489
	IDTitle         uint32 = 0x7BA9
	IDMuxingApp     uint32 = 0x4D80
	IDWritingApp    uint32 = 0x5741

	IDTracks          uint32 = 0x1654AE6B
	IDTrackEntry      uint32 = 0xAE
	IDTrackNumber     uint32 = 0xD7
	IDTrackUID        uint32 = 0x73C5
	IDTrackType       uint32 = 0x83
	IDFlagDefault     uint32 = 0x88
	IDName            uint32 = 0x536E
	IDCodecID         uint32 = 0x86
	IDCodecPrivate    uint32 = 0x63A2
	IDDefaultDuration uint32 = 0x23E383
	IDVideo           uint32 = 0xE0
	IDPixelWidth      uint32 = 0xB0
	IDPixelHeight     uint32 = 0xBA
	IDAudio           uint32 = 0xE1
	IDSamplingFreq    uint32 = 0xB5
	IDChannels        uint32 = 0x9F
	IDBitDepth        uint32 = 0x6264

	IDCluster     uint32 = 0x1F43B675
	IDTimecode    uint32 = 0xE7
	IDPosition    uint32 = 0xA7
	IDPrevSize    uint32 = 0xAB
	IDSimpleBlock uint32 = 0xA3
	IDBlockGroup  uint32 = 0xA0
	IDBlock       uint32 = 0xA1

	IDCues uint32 = 0x1C53BB6B

	IDTags      uint32 = 0x1254C367
	IDTag       uint32 = 0x7373
	IDTargets   uint32 = 0x63C0
	IDSimpleTag uint32 = 0x67C8
	IDTagName   uint32 = 0x45A3
	IDTagString uint32 = 0x4487
	IDTagBinary uint32 = 0x4485
)

// Track types (Matroska TrackType values).
const (
	TrackTypeVideo    = 1
	TrackTypeAudio    = 2
	TrackTypeComplex  = 3
	TrackTypeSubtitle = 0x11
)

// SimpleBlock flags.
const (
	FlagKeyframe    byte = 0x80
	FlagInvisible   byte = 0x08
	FlagDiscardable byte = 0x01
)

// UnknownSize marks an element whose size field is all ones ("unknown").
const UnknownSize int64 = -1

// Tag names reserved by Kinesis Video Streams.
const (
	TagEndOfFragment     = "AWS_KINESISVIDEO_END_OF_FRAGMENT"
	TagFragmentNumber    = "AWS_KINESISVIDEO_FRAGMENT_NUMBER"
	TagServerTimestamp   = "AWS_KINESISVIDEO_SERVER_TIMESTAMP"
	TagProducerTimestamp = "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP"
	TagMillisBehindNow   = "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"
	TagContinuationToken = "AWS_KINESISVIDEO_CONTINUATION_TOKEN"
	TagErrorCode         = "AWS_KINESISVIDEO_ERROR_CODE"
	TagErrorID           = "AWS_KINESISVIDEO_ERROR_ID"
)

// Errors returned by the EBML primitives.
var (
	ErrInvalidVint = errors.New("mkv: invalid EBML variable-length integer")
	ErrTooLarge    = errors.New("mkv: element too large")
	// ErrInvalidHeader is wrapped by Header.Validate's errors.
	ErrInvalidHeader = errors.New("mkv: invalid segment header")
)

// AppendID appends an element ID (which already carries its length marker).
func AppendID(dst []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(dst, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(dst, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(dst, byte(id>>8), byte(id))
	default:
		return append(dst, byte(id))
	}
}

// AppendSize appends n as an EBML size of the minimal width (1..8 bytes).
// A negative n writes the 1-byte unknown size 0xFF.
func AppendSize(dst []byte, n int64) []byte {
	if n < 0 {
		return append(dst, 0xFF)
	}
	w := 1
	for w < 8 && uint64(n) >= (uint64(1)<<(7*w))-1 {
		w++
	}
	return AppendSizeWidth(dst, n, w)
}

// AppendSizeWidth appends n as an EBML size of exactly w bytes (1..8). The
// official producer writes SimpleBlock sizes with w=8 and Tracks with w=4.
func AppendSizeWidth(dst []byte, n int64, w int) []byte {
	if w < 1 || w > 8 || n < 0 || uint64(n) >= (uint64(1)<<(7*w))-1 {
		panic(fmt.Sprintf("mkv: size %d does not fit %d bytes", n, w))
	}
	v := uint64(n) | uint64(1)<<(7*w)
	for i := w - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// VintLen returns the encoded length of the EBML vint starting with b, or 0
// when b is 0x00 (invalid as a first byte).
func VintLen(b byte) int {
	for i := 0; i < 8; i++ {
		if b&(0x80>>i) != 0 {
			return i + 1
		}
	}
	return 0
}

// ReadID decodes an element ID from p. It returns the ID (with its marker
// bits) and its length, or ErrInvalidVint (IDs are at most 4 bytes).
func ReadID(p []byte) (uint32, int, error) {
	if len(p) == 0 {
		return 0, 0, ErrInvalidVint
	}
	n := VintLen(p[0])
	if n == 0 || n > 4 {
		return 0, 0, ErrInvalidVint
	}
	if len(p) < n {
		return 0, 0, ErrInvalidVint
	}
	var id uint32
	for i := 0; i < n; i++ {
		id = id<<8 | uint32(p[i])
	}
	return id, n, nil
}

// ReadSize decodes an EBML size from p. An all-ones value is UnknownSize.
func ReadSize(p []byte) (int64, int, error) {
	if len(p) == 0 {
		return 0, 0, ErrInvalidVint
	}
	n := VintLen(p[0])
	if n == 0 || len(p) < n {
		return 0, 0, ErrInvalidVint
	}
	v := uint64(p[0]) & (0xFF >> n)
	allOnes := v == uint64(0xFF>>n)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(p[i])
		if p[i] != 0xFF {
			allOnes = false
		}
	}
	if allOnes {
		return UnknownSize, n, nil
	}
	if v > 1<<56 {
		return 0, 0, ErrTooLarge
	}
	return int64(v), n, nil
}

// AppendUint appends an unsigned-integer element in its minimal width.
func AppendUint(dst []byte, id uint32, v uint64) []byte {
	w := 1
	for w < 8 && v >= uint64(1)<<(8*w) {
		w++
	}
	return AppendUintWidth(dst, id, v, w)
}

// AppendUintWidth appends an unsigned-integer element of exactly w bytes.
func AppendUintWidth(dst []byte, id uint32, v uint64, w int) []byte {
	dst = AppendID(dst, id)
	dst = AppendSize(dst, int64(w))
	for i := w - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// AppendString appends a string (or binary) element.
func AppendString(dst []byte, id uint32, s string) []byte {
	dst = AppendID(dst, id)
	dst = AppendSize(dst, int64(len(s)))
	return append(dst, s...)
}

// AppendBinary appends a binary element.
func AppendBinary(dst []byte, id uint32, b []byte) []byte {
	dst = AppendID(dst, id)
	dst = AppendSize(dst, int64(len(b)))
	return append(dst, b...)
}

// ParseUint decodes the payload of an unsigned-integer element (0..8 bytes).
func ParseUint(p []byte) (uint64, error) {
	if len(p) > 8 {
		return 0, fmt.Errorf("mkv: unsigned integer of %d bytes", len(p))
	}
	var v uint64
	for _, b := range p {
		v = v<<8 | uint64(b)
	}
	return v, nil
}
