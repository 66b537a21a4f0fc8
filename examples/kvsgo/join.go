package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

type joinStats struct{ segments, clusters, blocks int }

// join rewrites a GetMedia response (one segment per fragment, with the
// service's AWS_KINESISVIDEO_* tags) into one segment that players handle
// like any file: the first segment's header, then every cluster, with
// timecodes rebased so that the file starts at 0 (the stream's are epoch
// times). A fragment whose tracks differ from the first
// (a new CodecPrivate) ends the file with an error rather than mixing codecs.
func join(w io.Writer, r io.Reader) (joinStats, error) { return joinProgress(w, r, nil) }

// joinProgress is join, counting the fragments written in p (if not nil).
func joinProgress(w io.Writer, r io.Reader, p *progress) (joinStats, error) {
	var st joinStats
	bw := bufio.NewWriterSize(w, 1<<20)
	rd := mkv.NewReader(r)
	var first *mkv.SegmentHeader
	var buf []byte
	var clusterTC, base uint64
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			bw.Flush()
			return st, fmt.Errorf("reading the GetMedia response: %w", err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			st.segments++
			if first == nil {
				first = ev.Header
				h := mkv.Header{TimecodeScale: first.TimecodeScale, Title: first.Title, MuxingApp: "kvsgo", WritingApp: "kvsgo get", Tracks: first.Tracks}
				copy(h.SegmentUID[:], first.SegmentUID)
				buf = mkv.AppendHeader(buf[:0], &h)
				if _, err := bw.Write(buf); err != nil {
					return st, err
				}
			} else if !sameTracks(first, ev.Header) {
				bw.Flush()
				return st, fmt.Errorf("fragment %d changes the tracks (codec or CodecPrivate); use -raw to keep every segment", st.segments)
			}
		case mkv.EventTags:
			var keep []mkv.SimpleTag
			for _, t := range ev.Tags {
				if !strings.HasPrefix(t.Name, "AWS_KINESISVIDEO_") {
					keep = append(keep, t)
				}
			}
			if len(keep) > 0 {
				if _, err := bw.Write(mkv.AppendTags(buf[:0], keep)); err != nil {
					return st, err
				}
			}
		case mkv.EventClusterStart:
			if st.clusters == 0 {
				base = ev.Timecode
			}
			st.clusters++
			if p != nil {
				p.fragments.Add(1)
			}
			if ev.Timecode < base {
				bw.Flush()
				return st, fmt.Errorf("fragment %d starts before the first one (timecode %d < %d)", st.clusters, ev.Timecode, base)
			}
			clusterTC = ev.Timecode - base
			if _, err := bw.Write(mkv.AppendClusterStart(buf[:0], clusterTC)); err != nil {
				return st, err
			}
		case mkv.EventBlock:
			st.blocks++
			b := ev.Block
			if _, err := bw.Write(mkv.AppendSimpleBlockHeader(buf[:0], b.Track, b.RelTimecode, b.Flags, len(b.Data))); err != nil {
				return st, err
			}
			if _, err := bw.Write(b.Data); err != nil {
				return st, err
			}
		}
	}
	if first == nil {
		return st, fmt.Errorf("the stream returned no fragments")
	}
	return st, bw.Flush()
}

// sameTracks reports whether fragments under header b may join a file
// whose header is a: b declares a subset of a's tracks, each unchanged (an
// audio and video stream goes on with one track while the other has
// stalled or ended).
func sameTracks(a, b *mkv.SegmentHeader) bool {
	if len(b.Tracks) == 0 || len(b.Tracks) > len(a.Tracks) || a.TimecodeScale != b.TimecodeScale {
		return false
	}
	for _, y := range b.Tracks {
		found := false
		for _, x := range a.Tracks {
			if x.Number == y.Number {
				found = x.CodecID == y.CodecID && string(x.CodecPrivate) == string(y.CodecPrivate)
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
