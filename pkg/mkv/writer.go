package mkv

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Header is what goes in front of the first Cluster of a PutMedia session:
// the EBML header, the Segment head (unknown size), Info and Tracks.
type Header struct {
	SegmentUID    [16]byte
	TimecodeScale uint64 // nanoseconds per timecode unit; 0 means 1,000,000 (1 ms)
	Title         string
	MuxingApp     string
	WritingApp    string
	Tracks        []Track
}

// Track is one TrackEntry.
type Track struct {
	Number       uint64 // TrackNumber, 1-based
	UID          uint64 // TrackUID; the official producer uses the track id
	Type         int    // TrackTypeVideo, TrackTypeAudio, ...
	Name         string
	CodecID      string
	CodecPrivate []byte
	// Video, written when PixelWidth > 0.
	PixelWidth  int
	PixelHeight int
	// Audio, written when SamplingFrequency > 0.
	SamplingFrequency float64
	Channels          int
	BitDepth          int // written when > 0
	DefaultDuration   uint64
	// NotDefault writes FlagDefault 0: players do not select the track on
	// their own (the E2EE key track).
	NotDefault bool
}

// DefaultTimecodeScale is 1 ms, the Kinesis Video Streams default.
const DefaultTimecodeScale = 1_000_000

// master appends a master element whose payload is built by body, with a size
// field of width w (0 = 8), or wider if the payload needs it.
func master(dst []byte, id uint32, w int, body func([]byte) []byte) []byte {
	dst = AppendID(dst, id)
	if w == 0 {
		w = 8
	}
	sizeAt := len(dst)
	dst = append(dst, make([]byte, w)...)
	start := len(dst)
	dst = body(dst)
	n := int64(len(dst) - start)
	if uint64(n) >= (uint64(1)<<(7*w))-1 {
		// A payload too big for the width asked for (a huge CodecPrivate):
		// widen the size field rather than fail.
		wide := AppendSizeWidth(nil, n, 8)
		dst = append(dst, make([]byte, 8-w)...)
		copy(dst[start+8-w:], dst[start:len(dst)-(8-w)])
		copy(dst[sizeAt:], wide)
		return dst
	}
	var tmp [8]byte
	copy(dst[sizeAt:start], AppendSizeWidth(tmp[:0], n, w))
	return dst
}

// Validate reports what makes h unfit to start a stream: no track, a track
// number of 0 or used twice. AppendHeader writes such a header anyway (it
// never panics); readers of untrusted input call Validate first.
// Its errors wrap ErrInvalidHeader.
func (h *Header) Validate() error {
	if len(h.Tracks) == 0 {
		return fmt.Errorf("%w: the segment declares no tracks", ErrInvalidHeader)
	}
	seen := make(map[uint64]bool, len(h.Tracks))
	for _, t := range h.Tracks {
		if t.Number == 0 || t.Number > maxTrackNumber {
			return fmt.Errorf("%w: track number %d out of range 1..%d", ErrInvalidHeader, t.Number, uint64(maxTrackNumber))
		}
		if seen[t.Number] {
			return fmt.Errorf("%w: track number %d declared twice", ErrInvalidHeader, t.Number)
		}
		seen[t.Number] = true
	}
	return nil
}

// maxTrackNumber is the largest track number a block header can carry (an
// 8-byte EBML vint).
const maxTrackNumber = 1<<56 - 2

// AppendEBMLHeader appends the EBML header the official producer writes
// (DocType matroska, version 2).
func AppendEBMLHeader(dst []byte) []byte {
	return master(dst, IDEBML, 1, func(b []byte) []byte {
		b = AppendUint(b, IDEBMLVersion, 1)
		b = AppendUint(b, IDEBMLReadVersion, 1)
		b = AppendUint(b, IDEBMLMaxIDLength, 4)
		b = AppendUint(b, IDEBMLMaxSizeLength, 8)
		b = AppendString(b, IDDocType, "matroska")
		b = AppendUint(b, IDDocTypeVersion, 2)
		b = AppendUint(b, IDDocTypeReadVersion, 2)
		return b
	})
}

// AppendHeader appends the EBML header, the start of a Segment of unknown
// size, Info and Tracks: everything a PutMedia body starts with. It writes
// whatever h holds, even a header that Validate refuses.
func AppendHeader(dst []byte, h *Header) []byte {
	dst = AppendEBMLHeader(dst)
	dst = AppendID(dst, IDSegment)
	dst = AppendSize(dst, UnknownSize)
	scale := h.TimecodeScale
	if scale == 0 {
		scale = DefaultTimecodeScale
	}
	dst = master(dst, IDInfo, 2, func(b []byte) []byte {
		b = AppendBinary(b, IDSegmentUID, h.SegmentUID[:])
		b = AppendUintWidth(b, IDTimecodeScale, scale, 8)
		if h.Title != "" {
			b = AppendString(b, IDTitle, h.Title)
		}
		b = AppendString(b, IDMuxingApp, h.MuxingApp)
		b = AppendString(b, IDWritingApp, h.WritingApp)
		return b
	})
	return master(dst, IDTracks, 4, func(b []byte) []byte {
		for i := range h.Tracks {
			b = appendTrack(b, &h.Tracks[i])
		}
		return b
	})
}

func appendTrack(dst []byte, t *Track) []byte {
	return master(dst, IDTrackEntry, 4, func(b []byte) []byte {
		b = AppendUint(b, IDTrackNumber, t.Number)
		b = AppendUintWidth(b, IDTrackUID, t.UID, 8)
		b = AppendUint(b, IDTrackType, uint64(t.Type))
		if t.NotDefault {
			b = AppendUint(b, IDFlagDefault, 0)
		}
		if t.Name != "" {
			b = AppendString(b, IDName, t.Name)
		}
		b = AppendString(b, IDCodecID, t.CodecID)
		if t.DefaultDuration > 0 {
			b = AppendUint(b, IDDefaultDuration, t.DefaultDuration)
		}
		if t.PixelWidth > 0 {
			b = master(b, IDVideo, 4, func(v []byte) []byte {
				v = AppendUintWidth(v, IDPixelWidth, uint64(t.PixelWidth), 2)
				return AppendUintWidth(v, IDPixelHeight, uint64(t.PixelHeight), 2)
			})
		}
		if t.SamplingFrequency > 0 {
			b = master(b, IDAudio, 4, func(a []byte) []byte {
				a = AppendID(a, IDSamplingFreq)
				a = AppendSize(a, 8)
				a = binary.BigEndian.AppendUint64(a, math.Float64bits(t.SamplingFrequency))
				a = AppendUint(a, IDChannels, uint64(t.Channels))
				if t.BitDepth > 0 {
					a = AppendUint(a, IDBitDepth, uint64(t.BitDepth))
				}
				return a
			})
		}
		if len(t.CodecPrivate) > 0 {
			b = AppendBinary(b, IDCodecPrivate, t.CodecPrivate)
		}
		return b
	})
}

// AppendClusterStart appends a Cluster of unknown size with its Timecode (8
// bytes, as the official producer writes it) and Position 0.
func AppendClusterStart(dst []byte, timecode uint64) []byte {
	dst = AppendID(dst, IDCluster)
	dst = AppendSize(dst, UnknownSize)
	dst = AppendUintWidth(dst, IDTimecode, timecode, 8)
	return AppendUint(dst, IDPosition, 0)
}

// SimpleBlockHeaderLen is the number of bytes AppendSimpleBlockHeader writes
// for a track number below 127.
const SimpleBlockHeaderLen = 1 + 8 + 4

// AppendSimpleBlockHeader appends a SimpleBlock's ID, 8-byte size and block
// header for a payload of n bytes; the caller appends the payload itself, so
// a frame is copied exactly once. Track numbers above 126 take a wider
// field (as read from a file); 0 is written as is, and Validate refuses it.
func AppendSimpleBlockHeader(dst []byte, track uint64, relTimecode int16, flags byte, n int) []byte {
	dst = AppendID(dst, IDSimpleBlock)
	if track >= 1 && track <= 126 {
		dst = AppendSizeWidth(dst, int64(n)+4, 8)
		return append(dst, 0x80|byte(track), byte(uint16(relTimecode)>>8), byte(uint16(relTimecode)), flags)
	}
	tn := AppendSize(nil, int64(min(track, maxTrackNumber)))
	dst = AppendSizeWidth(dst, int64(n+len(tn)+3), 8)
	dst = append(dst, tn...)
	return append(dst, byte(uint16(relTimecode)>>8), byte(uint16(relTimecode)), flags)
}

// SetSimpleBlockPayloadSize rewrites the size of the SimpleBlock that starts
// block (as written by AppendSimpleBlockHeader) for a payload of n bytes,
// for payloads whose length is known only once they are appended.
func SetSimpleBlockPayloadSize(block []byte, n int) {
	AppendSizeWidth(block[:1], int64(n)+4, 8)
}

// AppendSimpleBlock appends a whole SimpleBlock.
func AppendSimpleBlock(dst []byte, track uint64, relTimecode int16, flags byte, payload []byte) []byte {
	dst = AppendSimpleBlockHeader(dst, track, relTimecode, flags, len(payload))
	return append(dst, payload...)
}

// SimpleTag is one name/value tag.
type SimpleTag struct {
	Name  string
	Value string
}

// AppendTags appends a Tags element with one Tag per SimpleTag, each with
// 8-byte sizes as the official producer writes them.
func AppendTags(dst []byte, tags []SimpleTag) []byte {
	return master(dst, IDTags, 8, func(b []byte) []byte {
		for _, t := range tags {
			b = master(b, IDTag, 8, func(b []byte) []byte {
				return master(b, IDSimpleTag, 8, func(b []byte) []byte {
					b = AppendID(b, IDTagName)
					b = AppendSizeWidth(b, int64(len(t.Name)), 8)
					b = append(b, t.Name...)
					b = AppendID(b, IDTagString)
					b = AppendSizeWidth(b, int64(len(t.Value)), 8)
					return append(b, t.Value...)
				})
			})
		}
		return b
	})
}
