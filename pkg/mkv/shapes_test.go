package mkv

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// serviceShape is a GetMedia response of a shape the service sends, built
// with the EBML primitives only.
type serviceShape struct {
	name string
	in   []byte
}

// knownSegment is a producer's segment head with a Segment of known size
// (mkvmerge output) holding the Clusters given.
func knownSegment(clusters ...[]byte) []byte {
	body := bytes.Join(append([][]byte{
		el(IDInfo, uintEl(IDTimecodeScale, 1_000_000), strEl(IDMuxingApp, "test"), strEl(IDWritingApp, "test")),
		el(IDTracks, el(IDTrackEntry, uintEl(IDTrackNumber, 1), uintEl(IDTrackUID, 1), uintEl(IDTrackType, 1), strEl(IDCodecID, "V_TEST"))),
	}, clusters...), nil)
	return append(ebmlHeader(), el(IDSegment, body)...)
}

// sizedCluster is a Cluster of known size.
func sizedCluster(tc uint64, blocks ...[]byte) []byte {
	return el(IDCluster, append([][]byte{AppendUintWidth(nil, IDTimecode, tc, 8)}, blocks...)...)
}

// tagsFirstHead is a segment head whose Tags come before Info and Tracks.
func tagsFirstHead() []byte {
	return bytes.Join([][]byte{
		ebmlHeader(),
		unknown(IDSegment),
		tags("ENCODER", "x"),
		tags(TagFragmentNumber, "1", TagServerTimestamp, "1.0", TagProducerTimestamp, "1.0"),
		el(IDInfo, uintEl(IDTimecodeScale, 1_000_000), strEl(IDMuxingApp, "test")),
		el(IDTracks, el(IDTrackEntry, uintEl(IDTrackNumber, 1), uintEl(IDTrackUID, 1), uintEl(IDTrackType, 1), strEl(IDCodecID, "V_TEST"),
			el(IDCodecPrivate, []byte{9, 9}))),
	}, nil)
}

func serviceShapes() []serviceShape {
	key := simpleBlock(1, 0, FlagKeyframe, "key")
	delta := simpleBlock(1, 33, 0, "delta")
	full := append(tagsFirstHead(), cluster(1000, key, delta)...)
	full = append(full, tags(TagMillisBehindNow, "5", TagContinuationToken, "1")...)
	return []serviceShape{
		{"tags before info and tracks", full},
		{"cues and seekhead before tracks", bytes.Join([][]byte{ebmlHeader(), unknown(IDSegment), el(IDSeekHead), el(IDCues),
			el(IDTracks, el(IDTrackEntry, uintEl(IDTrackNumber, 1), uintEl(IDTrackType, 1), strEl(IDCodecID, "V_TEST"))),
			el(IDInfo, uintEl(IDTimecodeScale, 2_000_000)), cluster(5, key)}, nil)},
		{"empty clusters", append(segmentHead("V_TEST"), bytes.Join([][]byte{cluster(1000), sizedCluster(2000), cluster(3000, key)}, nil)...)},
		{"zero fragments", tags(TagMillisBehindNow, "0", TagContinuationToken, "0")},
		{"nothing at all", nil},
		{"head without clusters", segmentHead("V_TEST")},
		{"known-size segment", append(knownSegment(sizedCluster(1000, key, delta)), knownSegment(sizedCluster(2000, key))...)},
		{"equal cluster timecodes", append(segmentHead("V_TEST"), append(cluster(1000, key), cluster(1000, key)...)...)},
		{"decreasing cluster timecodes", append(append(segmentHead("V_TEST"), cluster(2000, key)...), append(segmentHead("V_TEST"), cluster(1000, key)...)...)},
		{"truncated at a block", full[:len(tagsFirstHead())+len(cluster(1000, key))]},
		{"truncated inside a block", full[:len(tagsFirstHead())+len(cluster(1000, key))-2]},
		{"truncated inside the head", full[:len(tagsFirstHead())-3]},
	}
}

func shape(t *testing.T, name string) []byte {
	for _, s := range serviceShapes() {
		if s.name == name {
			return s.in
		}
	}
	t.Fatalf("no shape %q", name)
	return nil
}

// The service may send a segment's Tags before its Info and Tracks: the
// head still has its tracks, the Tags come right after it, and Raw is the
// head without them.
func TestTagsBeforeInfoAndTracks(t *testing.T) {
	in := shape(t, "tags before info and tracks")
	s := summarize(t, NewReader(bytes.NewReader(in)))
	if s.segments != 1 || len(s.hdrs[0].Tracks) != 1 || s.hdrs[0].Tracks[0].CodecID != "V_TEST" || !bytes.Equal(s.hdrs[0].Tracks[0].CodecPrivate, []byte{9, 9}) {
		t.Fatalf("header %+v", s.hdrs)
	}
	want := []EventKind{EventSegmentStart, EventTags, EventTags, EventClusterStart, EventBlock, EventBlock, EventTags}
	if len(s.kinds) != len(want) {
		t.Fatalf("events %v, want %v", s.kinds, want)
	}
	for i := range want {
		if s.kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", s.kinds, want)
		}
	}
	if s.tagEvents[0][0].Name != "ENCODER" || s.tagEvents[1][0].Name != TagFragmentNumber {
		t.Fatalf("tags %+v", s.tagEvents)
	}
	// Raw re-read alone gives the same head, and holds no Tags.
	raw := s.hdrs[0].Raw
	if bytes.Contains(raw, AppendID(nil, IDTags)) {
		t.Fatal("Raw holds a Tags element")
	}
	again := summarize(t, NewReader(bytes.NewReader(raw)))
	if again.segments != 1 || again.hdrs[0].Tracks[0].CodecID != "V_TEST" || len(again.tags) != 0 {
		t.Fatalf("Raw re-read: %+v", again)
	}
}

func TestServiceShapes(t *testing.T) {
	for _, c := range []struct {
		name             string
		segments, blocks int
		timecodes        []uint64
		err              error // from the last NextEvent, nil for io.EOF
		scale            uint64
	}{
		{name: "cues and seekhead before tracks", segments: 1, blocks: 1, timecodes: []uint64{5}, scale: 2_000_000},
		{name: "empty clusters", segments: 1, blocks: 1, timecodes: []uint64{1000, 2000, 3000}},
		{name: "zero fragments"},
		{name: "nothing at all"},
		{name: "head without clusters", segments: 1},
		{name: "known-size segment", segments: 2, blocks: 3, timecodes: []uint64{1000, 2000}},
		{name: "equal cluster timecodes", segments: 1, blocks: 2, timecodes: []uint64{1000, 1000}},
		{name: "decreasing cluster timecodes", segments: 2, blocks: 2, timecodes: []uint64{2000, 1000}},
		{name: "truncated at a block", segments: 1, blocks: 1, timecodes: []uint64{1000}},
		{name: "truncated inside a block", segments: 1, blocks: 0, timecodes: []uint64{1000}, err: io.ErrUnexpectedEOF},
		{name: "truncated inside the head", err: io.ErrUnexpectedEOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(shape(t, c.name)))
			var segs, blocks int
			var tcs []uint64
			var err error
			for {
				var ev Event
				if ev, err = r.NextEvent(); err != nil {
					break
				}
				switch ev.Kind {
				case EventSegmentStart:
					segs++
					if len(ev.Header.Tracks) != 1 {
						t.Fatalf("segment %d: %d tracks", segs, len(ev.Header.Tracks))
					}
					if c.scale != 0 && ev.Header.TimecodeScale != c.scale {
						t.Fatalf("TimecodeScale %d", ev.Header.TimecodeScale)
					}
				case EventClusterStart:
					tcs = append(tcs, ev.Timecode)
				case EventBlock:
					blocks++
				}
			}
			if c.err == nil && err != io.EOF || c.err != nil && !errors.Is(err, c.err) {
				t.Fatalf("ended with %v, want %v", err, c.err)
			}
			if segs != c.segments || blocks != c.blocks || len(tcs) != len(c.timecodes) {
				t.Fatalf("%d segments, %d blocks, timecodes %v; want %d, %d, %v", segs, blocks, tcs, c.segments, c.blocks, c.timecodes)
			}
			for i := range tcs {
				if tcs[i] != c.timecodes[i] {
					t.Fatalf("timecodes %v, want %v", tcs, c.timecodes)
				}
			}
		})
	}
}

// AppendHeader never panics, whatever the header holds; Validate says
// what is wrong.
func TestWriterNeverPanics(t *testing.T) {
	for _, h := range []*Header{
		{},
		{Tracks: []Track{{Number: 0}}},
		{Tracks: []Track{{Number: 1}, {Number: 1}}},
		{Tracks: []Track{{Number: 1 << 60, CodecPrivate: make([]byte, 1<<21)}}},
	} {
		b := AppendHeader(nil, h)
		if h.Validate() == nil {
			t.Fatalf("Validate accepted %d tracks", len(h.Tracks))
		}
		s := summarize(t, NewReader(bytes.NewReader(b)))
		if s.segments != 1 || len(s.hdrs[0].Tracks) != len(h.Tracks) {
			t.Fatalf("re-read %d segments", s.segments)
		}
	}
	big := &Header{Tracks: []Track{{Number: 1, CodecID: "V_TEST", CodecPrivate: bytes.Repeat([]byte{7}, 1<<21)}}}
	if err := big.Validate(); err != nil {
		t.Fatal(err)
	}
	s := summarize(t, NewReader(bytes.NewReader(AppendHeader(nil, big))))
	if !bytes.Equal(s.hdrs[0].Tracks[0].CodecPrivate, big.Tracks[0].CodecPrivate) {
		t.Fatal("a CodecPrivate wider than the Tracks size field did not survive")
	}
	for _, track := range []uint64{0, 127, 1 << 40} {
		b := AppendSimpleBlock(nil, track, -3, FlagKeyframe, []byte("x"))
		r := NewReaderOptions(bytes.NewReader(append(cluster(1), b...)), ReaderOptions{})
		r.NextEvent()
		ev, err := r.NextEvent()
		if track == 0 {
			if err == nil {
				t.Fatal("track 0 block read back")
			}
			continue
		}
		if err != nil || ev.Block.Track != track || ev.Block.RelTimecode != -3 || string(ev.Block.Data) != "x" {
			t.Fatalf("track %d: %+v %v", track, ev.Block, err)
		}
	}
}

// Raw is the head exactly, whether Tags sat inside it or not.
func TestRawIsTheHead(t *testing.T) {
	head := segmentHead("V_TEST")
	for _, in := range [][]byte{
		append(append(head[:len(head):len(head)], tags("a", "b")...), cluster(1, simpleBlock(1, 0, FlagKeyframe, "k"))...),
		append(head[:len(head):len(head)], cluster(1, simpleBlock(1, 0, FlagKeyframe, "k"))...),
	} {
		s := summarize(t, NewReader(bytes.NewReader(in)))
		if !bytes.Equal(s.hdrs[0].Raw, head) {
			t.Fatalf("Raw %x\nwant %x", s.hdrs[0].Raw, head)
		}
	}
}
