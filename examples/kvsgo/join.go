package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// errNoFragments: the response held no fragment (an empty range). Nothing
// is written.
var errNoFragments = errors.New("the stream has no fragment in the range asked for")

// errEncrypted: the stream is end-to-end encrypted and no key was given.
var errEncrypted = errors.New("the stream is end-to-end encrypted")

type joinStats struct{ segments, clusters, blocks int }

// join rewrites a GetMedia response (one segment per fragment, with the
// service's AWS_KINESISVIDEO_* tags) into one segment that players handle
// like any file: the first segment's header, then every cluster, with
// timecodes rebased so that the file starts at 0 (the stream's are epoch
// times). A fragment whose tracks differ from the first (a new
// CodecPrivate) ends the file with an error rather than mixing codecs, and
// so does a fragment whose timestamps do not go forward (its first cluster
// at or before the latest frame written): the file keeps the fragments
// before it, every timestamp in it increasing, and the error names the
// fragment and suggests -raw, which keeps every segment as it came. Nothing
// is written before the first fragment: a response without one writes
// nothing and fails with errNoFragments, an encrypted stream with
// errEncrypted.
func join(w io.Writer, r io.Reader) (joinStats, error) { return joinProgress(w, r, nil) }

// joinProgress is join, counting the fragments written in p (if not nil).
func joinProgress(w io.Writer, r io.Reader, p *progress) (joinStats, error) {
	var st joinStats
	bw := bufio.NewWriterSize(w, 1<<20)
	rd := mkv.NewReader(r)
	var first *mkv.SegmentHeader
	var buf []byte
	var clusterTC, base uint64
	var last int64 = -1 // the latest block timestamp written, rebased
	var number string   // the fragment number the service tagged, if any
	var pend []byte     // the header and tags, until the first fragment
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
			number = ""
			if first == nil {
				first = ev.Header
				if err := (&mkv.Header{Tracks: first.Tracks}).Validate(); err != nil {
					return st, fmt.Errorf("fragment 1: %w", err)
				}
				for _, t := range first.Tracks {
					if t.CodecID == e2ee.KeyTrackCodecID {
						return st, fmt.Errorf("%w (its track %d carries key bundles): give -key and -device to decrypt it, or -raw to save it as it is", errEncrypted, t.Number)
					}
				}
				h := mkv.Header{TimecodeScale: first.TimecodeScale, Title: first.Title, MuxingApp: "kvsgo", WritingApp: "kvsgo get", Tracks: first.Tracks}
				copy(h.SegmentUID[:], first.SegmentUID)
				pend = mkv.AppendHeader(pend, &h)
			} else if !sameTracks(first, ev.Header) {
				bw.Flush()
				return st, fmt.Errorf("fragment %d changes the tracks (codec or CodecPrivate); use -raw to keep every segment", st.segments)
			}
		case mkv.EventTags:
			var keep []mkv.SimpleTag
			for _, t := range ev.Tags {
				if t.Name == mkv.TagFragmentNumber {
					number = t.Value
				}
				if !strings.HasPrefix(t.Name, "AWS_KINESISVIDEO_") {
					keep = append(keep, t)
				}
			}
			switch {
			case len(keep) == 0:
			case st.clusters == 0:
				pend = mkv.AppendTags(pend, keep)
			default:
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
			if first == nil {
				bw.Flush()
				return st, fmt.Errorf("fragment %d: a cluster before any segment head", st.clusters)
			}
			if pend != nil {
				if _, err := bw.Write(pend); err != nil {
					return st, err
				}
				pend = nil
			}
			if int64(ev.Timecode-base) <= last || ev.Timecode < base {
				bw.Flush()
				return st, &backwardsError{fragment: st.clusters, number: number, timecode: ev.Timecode, latest: uint64(last) + base, kept: st.clusters - 1}
			}
			clusterTC = ev.Timecode - base
			if _, err := bw.Write(mkv.AppendClusterStart(buf[:0], clusterTC)); err != nil {
				return st, err
			}
		case mkv.EventBlock:
			st.blocks++
			b := ev.Block
			if ts := int64(clusterTC) + int64(b.RelTimecode); ts > last {
				last = ts
			}
			if _, err := bw.Write(mkv.AppendSimpleBlockHeader(buf[:0], b.Track, b.RelTimecode, b.Flags, len(b.Data))); err != nil {
				return st, err
			}
			if _, err := bw.Write(b.Data); err != nil {
				return st, err
			}
		}
	}
	if st.clusters == 0 {
		return st, errNoFragments
	}
	return st, bw.Flush()
}

// backwardsError is a fragment whose timestamps do not go forward: its
// first cluster is at or before the latest frame already written.
type backwardsError struct {
	fragment         int    // 1-based, in the order received
	number           string // the service's fragment number, if tagged
	timecode, latest uint64 // as the stream has them
	kept             int    // fragments written before it
}

func (e *backwardsError) Error() string {
	name := fmt.Sprintf("fragment %d", e.fragment)
	if e.number != "" {
		name += " (" + e.number + ")"
	}
	return fmt.Sprintf("%s starts at timecode %d, not after the latest frame written (timecode %d): joining it would give timestamps that go back; "+
		"the output keeps the %d fragments before it; use -raw to keep every fragment as its own segment", name, e.timecode, e.latest, e.kept)
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
