package source

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// joiner rewrites the fetcher's fragments (one segment each) into one
// segment, as the kvsgo tool's joiner does: the first segment's header, then
// every cluster with its timecode moved so that the origin is 0, and every
// block. It reports fragments and gaps.
type joiner struct {
	s    *Source
	emit func([]byte) error

	first   *mkv.SegmentHeader
	pending *mkv.SegmentHeader // a later segment's head, checked at its cluster
	origin  uint64
	meta    map[string]string // AWS_KINESISVIDEO_* tags of the fragment ahead
	cluster uint64            // timecode of the current cluster
	last    int64             // timecode of the last block, -1 before the first
	inFrag  bool              // between a cluster start and the fragment's end
	frag    *Event            // the fragment being received, reported at its end
	buf     []byte
}

// received reports the fragment being received, once it has ended (the
// next fragment starts, the service's end-of-fragment tags come, or the
// stream ends).
func (j *joiner) received() {
	if j.frag != nil {
		j.s.event(*j.frag)
		j.frag = nil
	}
	j.inFrag = false
}

func (j *joiner) run(r io.Reader) error {
	j.last = -1
	rd := mkv.NewReader(r)
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			j.received()
			return nil
		}
		if err != nil {
			return err
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			j.received()
			if len(ev.Header.Tracks) == 0 {
				return fmt.Errorf("%w: a fragment's segment head (offset %d) declares no track", ErrNoTracks, ev.Offset)
			}
			if j.first == nil {
				j.first = ev.Header
				if j.s.cfg.SkipHeader {
					j.meta = map[string]string{}
					continue
				}
				h := mkv.Header{TimecodeScale: ev.Header.TimecodeScale, Title: ev.Header.Title, MuxingApp: "kvsgo", WritingApp: "kvsgo kvssrc", Tracks: ev.Header.Tracks}
				copy(h.SegmentUID[:], ev.Header.SegmentUID)
				j.buf = mkv.AppendHeader(j.buf[:0], &h)
				if j.s.cfg.Archive != nil {
					j.cues(&h)
				}
				if err := j.emit(j.buf); err != nil {
					return err
				}
			} else {
				j.pending = ev.Header
			}
			j.meta = map[string]string{}
		case mkv.EventTags:
			if j.inFrag {
				// After the frames: the service's end-of-fragment tags.
				for _, t := range ev.Tags {
					if t.Name == mkv.TagMillisBehindNow && j.frag != nil {
						if v, err := strconv.ParseInt(t.Value, 10, 64); err == nil {
							j.frag.MillisBehindNow = v
						}
					}
				}
				j.received()
				continue
			}
			for _, t := range ev.Tags {
				if strings.HasPrefix(t.Name, "AWS_KINESISVIDEO_") {
					if j.meta == nil {
						j.meta = map[string]string{}
					}
					j.meta[t.Name] = t.Value
				}
			}
		case mkv.EventClusterStart:
			if err := j.clusterStart(ev.Timecode); err != nil {
				return err
			}
		case mkv.EventBlock:
			if j.first == nil {
				continue
			}
			b := ev.Block
			if b.Track < 1 || b.Track > maxTrack {
				return fmt.Errorf("%w: a block of track %d (tracks 1 to %d)", ErrBadMedia, b.Track, maxTrack)
			}
			j.last = int64(j.cluster) + int64(b.RelTimecode)
			j.buf = mkv.AppendSimpleBlockHeader(j.buf[:0], b.Track, b.RelTimecode, b.Flags, len(b.Data))
			j.buf = append(j.buf, b.Data...)
			if err := j.emit(j.buf); err != nil {
				return err
			}
		}
	}
}

func (j *joiner) clusterStart(tc uint64) error {
	j.received()
	if j.first == nil {
		return fmt.Errorf("source: a cluster before any segment head")
	}
	if j.pending != nil {
		if what := trackChange(j.first, j.pending); what != "" {
			return fmt.Errorf("%w at fragment %s: %s", ErrTracksChanged, j.meta[mkv.TagFragmentNumber], what)
		}
		j.pending = nil
	}
	s := j.s
	s.mu.Lock()
	if s.origin == nil {
		o := tc
		s.origin = &o
	}
	j.origin = *s.origin
	s.mu.Unlock()
	scale := time.Duration(j.first.TimecodeScale)
	if tc < j.origin {
		return fmt.Errorf("source: fragment %s starts at timecode %d, before the first one (%d)", j.meta[mkv.TagFragmentNumber], tc, j.origin)
	}
	if j.last >= 0 && int64(tc) > j.last && time.Duration(int64(tc)-j.last)*scale > s.cfg.GapThreshold {
		s.event(Event{Kind: EventGap, GapFrom: time.Duration(j.last-int64(j.origin)) * scale, GapTo: time.Duration(tc-j.origin) * scale,
			Number: j.meta[mkv.TagFragmentNumber]})
	}
	j.cluster = tc
	ev := Event{Kind: EventFragment, Number: j.meta[mkv.TagFragmentNumber], Time: time.Duration(tc-j.origin) * scale, MillisBehindNow: -1,
		Producer: secondsTag(j.meta, mkv.TagProducerTimestamp, "AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP"),
		Server:   secondsTag(j.meta, mkv.TagServerTimestamp, "AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP")}
	if v, err := strconv.ParseInt(j.meta[mkv.TagMillisBehindNow], 10, 64); err == nil {
		ev.MillisBehindNow = v
	}
	j.frag, j.inFrag = &ev, true
	j.buf = mkv.AppendClusterStart(j.buf[:0], tc-j.origin)
	return j.emit(j.buf)
}

// secondsTag parses the service's "seconds.millis" timestamps.
func secondsTag(meta map[string]string, names ...string) time.Time {
	for _, n := range names {
		v := meta[n]
		if v == "" {
			continue
		}
		sec, frac, _ := strings.Cut(v, ".")
		s, err := strconv.ParseInt(sec, 10, 64)
		if err != nil {
			continue
		}
		ns := int64(0)
		if frac != "" {
			frac = (frac + "000000000")[:9]
			if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
				continue
			}
		}
		return time.Unix(s, ns)
	}
	return time.Time{}
}

// trackChange says how b's tracks differ from a's, or "".
func trackChange(a, b *mkv.SegmentHeader) string {
	if a.TimecodeScale != b.TimecodeScale {
		return fmt.Sprintf("timecode scale %d ns, was %d ns", b.TimecodeScale, a.TimecodeScale)
	}
	if len(a.Tracks) != len(b.Tracks) {
		return fmt.Sprintf("%d tracks, was %d", len(b.Tracks), len(a.Tracks))
	}
	for i := range a.Tracks {
		x, y := a.Tracks[i], b.Tracks[i]
		switch {
		case x.Number != y.Number:
			return fmt.Sprintf("track %d is numbered %d", x.Number, y.Number)
		case x.CodecID != y.CodecID:
			return fmt.Sprintf("track %d's codec is %s, was %s", x.Number, y.CodecID, x.CodecID)
		case string(x.CodecPrivate) != string(y.CodecPrivate):
			return fmt.Sprintf("track %d (%s) has another CodecPrivate (resolution or encoder settings changed)", x.Number, x.CodecID)
		}
	}
	return ""
}

// cues appends the archived range's index to the header in j.buf (see
// cues.go) and records where the segment's data starts.
func (j *joiner) cues(h *mkv.Header) {
	s := j.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.list == nil {
		return
	}
	at := segmentData(j.buf)
	if at < 0 {
		return
	}
	s.segStart = int64(at)
	track := h.Tracks[0].Number
	for _, t := range h.Tracks {
		if t.Type == mkv.TrackTypeVideo {
			track = t.Number
			break
		}
	}
	scale := h.TimecodeScale
	if scale == 0 {
		scale = mkv.DefaultTimecodeScale
	}
	last := s.list[len(s.list)-1]
	server := s.cfg.Archive.ServerTimestamps
	j.buf = withDuration(j.buf, cueStamp(last, server).Sub(cueStamp(s.list[0], server))+last.Duration, time.Duration(scale))
	j.buf = appendCues(j.buf, s.list, time.Duration(scale), track, server)
}
