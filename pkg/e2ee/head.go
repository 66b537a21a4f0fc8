package e2ee

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
)

// Head is what a consumer presents decrypted frames with, apart from the
// frames themselves: the segment's timecode scale and its audio and video
// tracks (not the key track). A KVK2 bundle carries its digest under the
// camera's signature (SPEC.md §5), so that a segment head rewritten in
// storage (another TimecodeScale, CodecPrivate, codec or track) is detected
// instead of presenting authentic frames wrongly.
type Head struct {
	TimecodeScale uint64 // nanoseconds per timecode unit
	Tracks        []HeadTrack
}

// HeadTrack is one audio or video TrackEntry, as far as it matters to
// decoding and presentation. The fields are those of the Matroska elements
// of the same names.
type HeadTrack struct {
	Number            uint64
	UID               uint64
	Type              uint64
	NotDefault        bool // FlagDefault 0
	CodecID           string
	CodecPrivate      []byte
	Name              string
	PixelWidth        uint64
	PixelHeight       uint64
	SamplingFrequency float64
	Channels          uint64
	BitDepth          uint64
	DefaultDuration   uint64
}

// HeadDigestSize is the size of a head digest.
const HeadDigestSize = sha256.Size

const headLabel = "KVS-E2EE/1 head"

// Digest is SHA-256 of the head's canonical encoding (SPEC.md §5.1):
//
//	"KVS-E2EE/1 head" || BE64 timecode_scale || BE16 n ||
//	  n × ( BE64 number || BE64 uid || BE64 type || u8 flags (0x01: not default) ||
//	        L16(codec_id) || L32(codec_private) || L16(name) ||
//	        BE64 pixel_width || BE64 pixel_height || BE64 float64 bits of sampling_frequency ||
//	        BE64 channels || BE64 bit_depth || BE64 default_duration )
//
// with the tracks in increasing track number. Strings and CodecPrivate
// longer than their length field are cut in the encoding, which a
// Matroska head never needs.
func (h Head) Digest() [HeadDigestSize]byte {
	tracks := slices.Clone(h.Tracks)
	slices.SortStableFunc(tracks, func(a, b HeadTrack) int {
		switch {
		case a.Number < b.Number:
			return -1
		case a.Number > b.Number:
			return 1
		}
		return 0
	})
	hs := sha256.New()
	var b []byte
	b = append(b, headLabel...)
	b = binary.BigEndian.AppendUint64(b, h.TimecodeScale)
	b = binary.BigEndian.AppendUint16(b, uint16(min(len(tracks), math.MaxUint16)))
	hs.Write(b)
	for i, t := range tracks {
		if i == math.MaxUint16 {
			break
		}
		b = b[:0]
		b = binary.BigEndian.AppendUint64(b, t.Number)
		b = binary.BigEndian.AppendUint64(b, t.UID)
		b = binary.BigEndian.AppendUint64(b, t.Type)
		var flags byte
		if t.NotDefault {
			flags |= 0x01
		}
		b = append(b, flags)
		b = appendL16(b, []byte(t.CodecID[:min(len(t.CodecID), math.MaxUint16)]))
		cp := t.CodecPrivate[:min(len(t.CodecPrivate), math.MaxUint32)]
		b = binary.BigEndian.AppendUint32(b, uint32(len(cp)))
		hs.Write(b)
		hs.Write(cp)
		b = appendL16(b[:0], []byte(t.Name[:min(len(t.Name), math.MaxUint16)]))
		b = binary.BigEndian.AppendUint64(b, t.PixelWidth)
		b = binary.BigEndian.AppendUint64(b, t.PixelHeight)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(t.SamplingFrequency))
		b = binary.BigEndian.AppendUint64(b, t.Channels)
		b = binary.BigEndian.AppendUint64(b, t.BitDepth)
		b = binary.BigEndian.AppendUint64(b, t.DefaultDuration)
		hs.Write(b)
	}
	var d [HeadDigestSize]byte
	hs.Sum(d[:0])
	return d
}
