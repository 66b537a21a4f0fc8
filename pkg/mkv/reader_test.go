package mkv

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/kvsgo/kvsgo/internal/testenv"
)

type summary struct {
	segments, clusters, blocks, keys int
	tags                             []SimpleTag
	hdrs                             []*SegmentHeader
	timecodes                        []uint64
}

func summarize(t testing.TB, r *Reader) summary {
	var s summary
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return s
		}
		if err != nil {
			t.Fatalf("after %d blocks: %v", s.blocks, err)
		}
		switch ev.Kind {
		case EventSegmentStart:
			s.segments++
			s.hdrs = append(s.hdrs, ev.Header)
		case EventClusterStart:
			s.clusters++
			s.timecodes = append(s.timecodes, ev.Timecode)
		case EventBlock:
			s.blocks++
			if ev.Block.Keyframe {
				s.keys++
			}
		case EventTags:
			s.tags = append(s.tags, ev.Tags...)
		}
	}
}

func TestReadOfficialPutMedia(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	s := summarize(t, NewReader(bytes.NewReader(fx)))
	if s.segments != 1 || s.clusters != 10 || s.blocks != 300 || s.keys != 10 {
		t.Fatalf("got %d segments, %d clusters, %d blocks, %d key frames", s.segments, s.clusters, s.blocks, s.keys)
	}
	h := s.hdrs[0]
	tr := h.Tracks[0]
	if len(h.Tracks) != 1 || tr.CodecID != "V_MPEG4/ISO/AVC" || tr.PixelWidth != 320 || tr.PixelHeight != 240 || len(tr.CodecPrivate) != 44 || h.TimecodeScale != 1_000_000 {
		t.Fatalf("header %+v track %+v", h, tr)
	}
	if !bytes.Equal(h.Raw, fx[:0x115]) {
		t.Fatalf("raw header is %d bytes, want the first 0x115", len(h.Raw))
	}
	if len(s.tags) != 1 || s.tags[0].Name != TagEndOfFragment {
		t.Fatalf("tags = %+v", s.tags)
	}
}

// The real service's GetMedia output: one segment per fragment, with the
// AWS_KINESISVIDEO_* tags before and after each cluster.
func TestReadRealGetMedia(t *testing.T) {
	fx := testenv.ReadFixture(t, "kvs-getmedia-real.mkv")
	s := summarize(t, NewReader(bytes.NewReader(fx)))
	// Counted with ffprobe -count_frames and mkvinfo: 5 fragments of 60 frames.
	if s.segments != 5 || s.clusters != 5 || s.blocks != 300 || s.keys != 5 {
		t.Fatalf("%d segments, %d clusters: want one cluster per segment", s.segments, s.clusters)
	}
	names := map[string]int{}
	for _, tg := range s.tags {
		names[tg.Name]++
	}
	for _, n := range []string{TagFragmentNumber, TagServerTimestamp, TagProducerTimestamp, TagMillisBehindNow, TagContinuationToken} {
		if names[n] != s.segments {
			t.Errorf("tag %s seen %d times, want once per fragment (%d)", n, names[n], s.segments)
		}
	}
	for i := 1; i < len(s.timecodes); i++ {
		if s.timecodes[i] <= s.timecodes[i-1] {
			t.Errorf("cluster timecodes not increasing: %v", s.timecodes)
		}
	}
	t.Logf("%d segments, %d blocks (%d key), tags %v", s.segments, s.blocks, s.keys, names)
}

func TestTruncatedAndDamaged(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	// Truncated: a clear error, never a panic.
	r := NewReader(bytes.NewReader(fx[:len(fx)/2]))
	var err error
	for err == nil {
		_, err = r.NextEvent()
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated input: %v", err)
	}
	// Damage the ID of the third cluster: resync skips to the next one.
	bad := append([]byte(nil), fx...)
	n := 0
	for i := 0; i+4 < len(bad); i++ {
		if bytes.Equal(bad[i:i+4], []byte{0x1F, 0x43, 0xB6, 0x75}) {
			if n++; n == 3 {
				copy(bad[i:], []byte{0, 0, 0, 0})
				break
			}
		}
	}
	var skipped int64
	s := summarize(t, NewReaderOptions(bytes.NewReader(bad), ReaderOptions{Resync: true, Skipped: func(_, l int64, _ error) { skipped += l }}))
	if s.clusters != 9 || skipped == 0 {
		t.Fatalf("after resync: %d clusters, %d bytes skipped", s.clusters, skipped)
	}
	if _, err := io.ReadAll(io.LimitReader(bytes.NewReader(nil), 0)); err != nil {
		t.Fatal(err)
	}
}

func FuzzReader(f *testing.F) {
	if b, err := os.ReadFile(testenv.Root() + "/../shared/fixtures/official-putmedia.mkv"); err == nil {
		f.Add(b[:0x1200])
	}
	var h Header
	h.Tracks = []Track{{Number: 1, UID: 1, Type: TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", PixelWidth: 2, PixelHeight: 2, CodecPrivate: []byte{1, 2, 3}}}
	seed := AppendHeader(nil, &h)
	seed = AppendTags(seed, []SimpleTag{{Name: "a", Value: "b"}})
	seed = AppendClusterStart(seed, 5)
	seed = AppendSimpleBlock(seed, 1, 0, FlagKeyframe, []byte{1, 2, 3})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, resync := range []bool{false, true} {
			r := NewReaderOptions(bytes.NewReader(b), ReaderOptions{Resync: resync, MaxElementSize: 1 << 20})
			for i := 0; i < 10000; i++ {
				if _, err := r.NextEvent(); err != nil {
					break
				}
			}
		}
	})
}

// Writer output reads back as written.
func TestRoundTrip(t *testing.T) {
	var h Header
	h.Tracks = []Track{{Number: 1, UID: 1, Type: TrackTypeAudio, Name: "audio", CodecID: "A_AAC", SamplingFrequency: 48000, Channels: 2, CodecPrivate: []byte{0x11, 0x90}}}
	b := AppendHeader(nil, &h)
	for c := 0; c < 3; c++ {
		b = AppendTags(b, []SimpleTag{{Name: "n", Value: string(rune('a' + c))}})
		b = AppendClusterStart(b, uint64(1000*c))
		for i := 0; i < 5; i++ {
			b = AppendSimpleBlock(b, 1, int16(i*20), FlagKeyframe, []byte{byte(c), byte(i)})
		}
	}
	s := summarize(t, NewReader(bytes.NewReader(b)))
	if s.clusters != 3 || s.blocks != 15 || len(s.tags) != 3 || s.hdrs[0].Tracks[0].SamplingFrequency != 48000 || s.hdrs[0].Tracks[0].Channels != 2 {
		t.Fatalf("%+v", s)
	}
}
