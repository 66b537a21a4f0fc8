package source

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// Archived playback writes a Cues element (an index) right after the
// segment head, one CuePoint per listed fragment, so that a demuxer reading
// the stream in push mode (matroskademux) can seek: it asks upstream for
// the byte offset of a cue's cluster. The offsets are virtual, since the
// bytes of fragments not yet read are unknown: cueBase + i*cueStep from the
// segment's data for fragment i. The element maps a byte seek to such an
// offset back to fragment i (Source.SeekOffset) and starts there.
const (
	cueBase = int64(1) << 40
	cueStep = int64(1) << 24
)

// Matroska IDs of the index.
const (
	idCuePoint          = 0xBB
	idCueTime           = 0xB3
	idCueTrackPositions = 0xB7
	idCueTrack          = 0xF7
	idCueClusterPos     = 0xF1
)

// appendCues appends the index of list (timecodes relative to its first
// fragment, in units of scale ns) for track.
func appendCues(dst []byte, list []kvs.FragmentInfo, scale time.Duration, track uint64, server bool) []byte {
	if len(list) == 0 || scale <= 0 {
		return dst
	}
	var body []byte
	for i, f := range list {
		t := cueStamp(f, server).Sub(cueStamp(list[0], server))
		if t < 0 {
			t = 0
		}
		var tp []byte
		tp = mkv.AppendUint(tp, idCueTrack, track)
		tp = mkv.AppendUint(tp, idCueClusterPos, uint64(cueBase+int64(i)*cueStep))
		var cp []byte
		cp = mkv.AppendUint(cp, idCueTime, uint64(t/scale))
		cp = mkv.AppendID(cp, idCueTrackPositions)
		cp = mkv.AppendSize(cp, int64(len(tp)))
		cp = append(cp, tp...)
		body = mkv.AppendID(body, idCuePoint)
		body = mkv.AppendSize(body, int64(len(cp)))
		body = append(body, cp...)
	}
	dst = mkv.AppendID(dst, mkv.IDCues)
	dst = mkv.AppendSize(dst, int64(len(body)))
	return append(dst, body...)
}

func cueStamp(f kvs.FragmentInfo, server bool) time.Time {
	if server {
		return f.ServerTimestamp
	}
	return f.ProducerTimestamp
}

// withDuration inserts a Duration (in units of scale) into the Info of a
// header mkv.AppendHeader wrote (its Info comes right after the Segment's
// 12-byte start, with a 2-byte size): a demuxer clamps seeks to the
// duration it knows.
func withDuration(h []byte, d time.Duration, scale time.Duration) []byte {
	at := segmentData(h)
	if at < 0 || len(h) < at+6 || h[at] != 0x15 || h[at+1] != 0x49 || h[at+2] != 0xA9 || h[at+3] != 0x66 || h[at+4]&0xC0 != 0x40 {
		return h // not the layout expected: no duration
	}
	size := int(h[at+4]&0x3F)<<8 | int(h[at+5])
	const idDuration = 0x4489
	el := mkv.AppendID(nil, idDuration)
	el = append(el, 0x88)
	el = binary.BigEndian.AppendUint64(el, math.Float64bits(float64(d)/float64(scale)))
	if size+len(el) >= 0x3FFF {
		return h
	}
	size += len(el)
	end := at + 6 + size - len(el)
	out := append([]byte(nil), h[:end]...)
	out[at+4], out[at+5] = 0x40|byte(size>>8), byte(size)
	out = append(out, el...)
	return append(out, h[end:]...)
}

// segmentData is the offset of the Segment's data in a header
// mkv.AppendHeader wrote, or -1.
func segmentData(h []byte) int {
	at := len(mkv.AppendEBMLHeader(nil))
	if len(h) < at+5 || h[at] != 0x18 || h[at+1] != 0x53 || h[at+2] != 0x80 || h[at+3] != 0x67 || h[at+4] == 0 {
		return -1
	}
	n := 1 // the size's length, from its leading zero bits
	for b := h[at+4]; b&0x80 == 0; b <<= 1 {
		n++
	}
	return at + 4 + n
}

// SeekOffset maps a byte offset of the output (a demuxer's seek to a cue's
// cluster) to the stream time of that fragment, relative to the first
// listed one (for Config.SeekTo). ok is false for any other offset.
func (s *Source) SeekOffset(offset int64) (t time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.list == nil || s.segStart == 0 {
		return 0, false
	}
	rel := offset - s.segStart - cueBase
	if rel < 0 || rel%cueStep != 0 || rel/cueStep >= int64(len(s.list)) {
		return 0, false
	}
	i := rel / cueStep
	server := s.cfg.Archive != nil && s.cfg.Archive.ServerTimestamps
	return cueStamp(s.list[i], server).Sub(cueStamp(s.list[0], server)), true
}
