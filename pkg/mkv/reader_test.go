package mkv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// What mkvinfo -v (mkvtoolnix 74) and ffprobe -count_frames report for the
// shared fixtures; the reader must agree.
const (
	// official-putmedia.mkv: one PutMedia body of the official producer.
	officialClusters      = 10
	officialBlocks        = 300
	officialKeyframes     = 10
	officialFirstTimecode = 1795393128941 // ms; "498720:18:48.941", one cluster per second
	officialHeaderLen     = 0x115         // EBML header + Segment head + Info + Tracks

	// kvs-getmedia-real.mkv: a real GetMedia response, one segment per
	// fragment. mkvinfo stops at every EBML header after the first ("Error
	// in the Matroska file structure at position 547925 … Resyncing") but
	// lists 5 Clusters (timestamps 0, 2, 4, 6, 8 s), 300 SimpleBlocks of
	// which 5 are key frames, a Cues in the last segment, and per segment 7
	// producer SimpleTags plus the 5 AWS_KINESISVIDEO_* ones. ffprobe:
	// h264 640x360, nb_read_frames=300.
	realSegments  = 5
	realBlocks    = 300
	realKeyframes = 5
	realCPDLen    = 54
)

var (
	realTimecodes       = []uint64{0, 2000, 4000, 6000, 8000}
	realFragmentNumbers = []string{
		"91343852333181432392682062607743920146159169392",
		"91343852333181432397633822764885441725874549018",
		"91343852333181432402585582922026963247510532162",
		"91343852333181432407537343079168484595829378270",
		"91343852333181432412489103236310005892133364608",
	}
	realServerTimestamps = []string{"1511852109.126", "1511852110.915", "1511852112.487", "1511852113.414", "1511852114.147"}
	realMillisBehind     = []string{"15858", "14155", "12940", "12414", "12093"}
)

type summary struct {
	segments, clusters, blocks, keys int
	tags                             []SimpleTag
	tagEvents                        [][]SimpleTag
	hdrs                             []*SegmentHeader
	timecodes                        []uint64
	clusterOffsets                   []int64
	perCluster                       []int
	payloads                         [][]byte
	kinds                            []EventKind
}

func summarize(t testing.TB, r *Reader) summary {
	t.Helper()
	var s summary
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			return s
		}
		if err != nil {
			t.Fatalf("after %d blocks: %v", s.blocks, err)
		}
		s.kinds = append(s.kinds, ev.Kind)
		switch ev.Kind {
		case EventSegmentStart:
			s.segments++
			s.hdrs = append(s.hdrs, ev.Header)
		case EventClusterStart:
			s.clusters++
			s.timecodes = append(s.timecodes, ev.Timecode)
			s.clusterOffsets = append(s.clusterOffsets, ev.Offset)
			s.perCluster = append(s.perCluster, 0)
		case EventBlock:
			s.blocks++
			if ev.Block.Keyframe {
				s.keys++
			}
			if len(s.perCluster) > 0 {
				s.perCluster[len(s.perCluster)-1]++
			}
			s.payloads = append(s.payloads, append([]byte(nil), ev.Block.Data...))
		case EventTags:
			s.tags = append(s.tags, ev.Tags...)
			s.tagEvents = append(s.tagEvents, ev.Tags)
		}
	}
}

func TestReadOfficialPutMedia(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	s := summarize(t, NewReader(bytes.NewReader(fx)))
	if s.segments != 1 || s.clusters != officialClusters || s.blocks != officialBlocks || s.keys != officialKeyframes {
		t.Fatalf("got %d segments, %d clusters, %d blocks, %d key frames; want 1, %d, %d, %d",
			s.segments, s.clusters, s.blocks, s.keys, officialClusters, officialBlocks, officialKeyframes)
	}
	h := s.hdrs[0]
	if len(h.Tracks) != 1 {
		t.Fatalf("%d tracks", len(h.Tracks))
	}
	tr := h.Tracks[0]
	if tr.Number != 1 || tr.UID != 1 || tr.Type != TrackTypeVideo || tr.Name != "kinesis_video" || tr.CodecID != "V_MPEG4/ISO/AVC" ||
		tr.PixelWidth != 320 || tr.PixelHeight != 240 || len(tr.CodecPrivate) != 44 {
		t.Errorf("track %+v", tr)
	}
	if h.TimecodeScale != 1_000_000 || h.Title != "Kinesis Video SDK" || h.MuxingApp != "Kinesis Video SDK 1.1.0" ||
		h.WritingApp != "Kinesis Video SDK 1.1.0" || len(h.SegmentUID) != 16 {
		t.Errorf("header %+v", h)
	}
	if !bytes.Equal(h.Raw, fx[:officialHeaderLen]) {
		t.Errorf("raw header is %d bytes, want the first %d of the file", len(h.Raw), officialHeaderLen)
	}
	for i, tc := range s.timecodes {
		if want := uint64(officialFirstTimecode + 1000*i); tc != want {
			t.Errorf("cluster %d timecode %d, want %d", i, tc, want)
		}
		if off := s.clusterOffsets[i]; !bytes.HasPrefix(fx[off:], []byte{0x1F, 0x43, 0xB6, 0x75}) {
			t.Errorf("cluster %d offset %d does not point at a Cluster ID", i, off)
		}
		if s.perCluster[i] != 30 {
			t.Errorf("cluster %d has %d blocks, want 30", i, s.perCluster[i])
		}
	}
	if len(s.tags) != 1 || s.tags[0].Name != TagEndOfFragment || s.tags[0].Value != "" || s.kinds[len(s.kinds)-1] != EventTags {
		t.Errorf("tags = %+v; want one final AWS_KINESISVIDEO_END_OF_FRAGMENT", s.tags)
	}
}

// The real service's GetMedia output: one segment per fragment, with the
// AWS_KINESISVIDEO_* tags before and after each cluster.
func TestReadRealGetMedia(t *testing.T) {
	fx := testenv.ReadFixture(t, "kvs-getmedia-real.mkv")
	s := summarize(t, NewReader(bytes.NewReader(fx)))
	if s.segments != realSegments || s.clusters != realSegments || s.blocks != realBlocks || s.keys != realKeyframes {
		t.Fatalf("%d segments, %d clusters, %d blocks, %d key frames; want %d, %d, %d, %d",
			s.segments, s.clusters, s.blocks, s.keys, realSegments, realSegments, realBlocks, realKeyframes)
	}
	if fmt.Sprint(s.timecodes) != fmt.Sprint(realTimecodes) {
		t.Errorf("cluster timecodes %v, want %v", s.timecodes, realTimecodes)
	}
	for i, h := range s.hdrs {
		if len(h.Tracks) != 1 || h.Tracks[0].PixelWidth != 640 || h.Tracks[0].PixelHeight != 360 || len(h.Tracks[0].CodecPrivate) != realCPDLen ||
			h.Tracks[0].CodecID != "V_MPEG4/ISO/AVC" || h.MuxingApp != "Lavf57.71.100" {
			t.Errorf("segment %d header %+v", i, h)
		}
		if !bytes.HasPrefix(h.Raw, []byte{0x1A, 0x45, 0xDF, 0xA3}) {
			t.Errorf("segment %d raw header does not start with an EBML header", i)
		}
	}
	// Per segment: the producer's Tags (7 SimpleTags), the fragment's
	// metadata before the Cluster, the continuation token after it.
	if len(s.tagEvents) != 3*realSegments {
		t.Fatalf("%d Tags elements, want %d", len(s.tagEvents), 3*realSegments)
	}
	for i := 0; i < realSegments; i++ {
		prod, before, after := s.tagEvents[3*i], s.tagEvents[3*i+1], s.tagEvents[3*i+2]
		if len(prod) != 7 || prod[0].Name != "COMPATIBLE_BRANDS" {
			t.Errorf("segment %d producer tags %+v", i, prod)
		}
		want := []SimpleTag{{TagFragmentNumber, realFragmentNumbers[i]}, {TagServerTimestamp, realServerTimestamps[i]}}
		if len(before) != 3 || before[0] != want[0] || before[1] != want[1] || before[2].Name != TagProducerTimestamp {
			t.Errorf("segment %d tags before the cluster %+v", i, before)
		}
		if len(after) != 2 || after[0] != (SimpleTag{TagMillisBehindNow, realMillisBehind[i]}) || after[1] != (SimpleTag{TagContinuationToken, realFragmentNumbers[i]}) {
			t.Errorf("segment %d tags after the cluster %+v", i, after)
		}
	}
	wantKinds := []EventKind{EventSegmentStart, EventTags, EventTags, EventClusterStart}
	for i, k := range wantKinds {
		if s.kinds[i] != k {
			t.Fatalf("event %d is %v, want %v (order %v…)", i, s.kinds[i], k, s.kinds[:4])
		}
	}
}

// Reading one byte at a time gives the same events: the reader never
// assumes a Read fills its buffer.
func TestReadOneByteAtATime(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	a := summarize(t, NewReader(bytes.NewReader(fx)))
	b := summarize(t, NewReader(iotest.OneByteReader(bytes.NewReader(fx))))
	if a.blocks != b.blocks || a.clusters != b.clusters || !bytes.Equal(a.payloads[299], b.payloads[299]) || !bytes.Equal(a.hdrs[0].Raw, b.hdrs[0].Raw) {
		t.Fatal("one-byte reads differ from whole reads")
	}
}

// Events come out as soon as their bytes arrive: the reader never waits for
// more input than the element it is reading.
func TestReadIsIncremental(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	pr, pw := io.Pipe()
	r := NewReader(pr)
	// Up to and including the EOFR Tags, but keep the pipe open.
	go pw.Write(fx)
	got := make(chan EventKind, 1000)
	go func() {
		for {
			ev, err := r.NextEvent()
			if err != nil {
				close(got)
				return
			}
			got <- ev.Kind
		}
	}()
	n, tags := 0, 0
	timeout := time.After(10 * time.Second)
	for tags == 0 {
		select {
		case k := <-got:
			n++
			if k == EventTags {
				tags++
			}
		case <-timeout:
			t.Fatalf("only %d events before the input was closed", n)
		}
	}
	if n != 1+officialClusters+officialBlocks+1 {
		t.Errorf("%d events before close", n)
	}
	pw.Close()
	if _, ok := <-got; ok {
		t.Error("an event after the final Tags")
	}
}

// ---- synthetic inputs built with the EBML primitives only ----

func el(id uint32, payload ...[]byte) []byte {
	b := AppendID(nil, id)
	p := bytes.Join(payload, nil)
	b = AppendSize(b, int64(len(p)))
	return append(b, p...)
}

func unknown(id uint32, payload ...[]byte) []byte {
	b := AppendID(nil, id)
	b = AppendSize(b, UnknownSize)
	return append(b, bytes.Join(payload, nil)...)
}

func uintEl(id uint32, v uint64) []byte { return AppendUint(nil, id, v) }

func strEl(id uint32, s string) []byte { return AppendString(nil, id, s) }

func simpleBlock(track byte, rel int16, flags byte, data string) []byte {
	return el(IDSimpleBlock, []byte{0x80 | track, byte(uint16(rel) >> 8), byte(rel), flags}, []byte(data))
}

func ebmlHeader() []byte {
	return el(IDEBML, uintEl(IDEBMLVersion, 1), strEl(IDDocType, "matroska"), uintEl(IDDocTypeVersion, 2))
}

func segmentHead(codec string) []byte {
	return bytes.Join([][]byte{
		ebmlHeader(),
		unknown(IDSegment),
		el(IDInfo, uintEl(IDTimecodeScale, 1_000_000), strEl(IDMuxingApp, "test"), strEl(IDWritingApp, "test")),
		el(IDTracks, el(IDTrackEntry, uintEl(IDTrackNumber, 1), uintEl(IDTrackUID, 1), uintEl(IDTrackType, 1), strEl(IDCodecID, codec),
			el(IDVideo, uintEl(IDPixelWidth, 2), uintEl(IDPixelHeight, 2)), el(IDCodecPrivate, []byte{1, 2, 3}))),
	}, nil)
}

func tags(kv ...string) []byte {
	var st [][]byte
	for i := 0; i+1 < len(kv); i += 2 {
		st = append(st, el(IDSimpleTag, strEl(IDTagName, kv[i]), strEl(IDTagString, kv[i+1])))
	}
	return el(IDTags, el(IDTag, st...))
}

func cluster(tc uint64, blocks ...[]byte) []byte {
	return unknown(IDCluster, append([][]byte{AppendUintWidth(nil, IDTimecode, tc, 8), uintEl(IDPosition, 0)}, blocks...)...)
}

// smallStream is two concatenated segments, as GetMedia sends them.
func smallStream() []byte {
	var b []byte
	for seg := 0; seg < 2; seg++ {
		b = append(b, segmentHead("V_MPEG4/ISO/AVC")...)
		b = append(b, tags("n", fmt.Sprint(seg))...)
		b = append(b, cluster(uint64(1000*seg), simpleBlock(1, 0, FlagKeyframe, "key"), simpleBlock(1, 33, 0, "delta"))...)
		b = append(b, tags(TagContinuationToken, "1")...)
	}
	return b
}

func TestUnknownSizeMastersEndAtTheirSiblings(t *testing.T) {
	b := smallStream()
	r := NewReader(bytes.NewReader(b))
	var trace []string
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch e.ID {
		case IDEBML, IDSegment, IDCluster, IDTags, IDSimpleBlock:
			trace = append(trace, fmt.Sprintf("%d:%X", r.Depth(), e.ID))
		}
	}
	// Depth counts open masters (a master counts itself, a leaf does not).
	// The second EBML header closes the Segment; each Tags closes the
	// Cluster before it.
	want := "1:1A45DFA3 1:18538067 2:1254C367 2:1F43B675 2:A3 2:A3 2:1254C367 " +
		"1:1A45DFA3 1:18538067 2:1254C367 2:1F43B675 2:A3 2:A3 2:1254C367"
	if got := strings.Join(trace, " "); got != want {
		t.Fatalf("depth:ID trace\n got %s\nwant %s", got, want)
	}
	s := summarize(t, NewReader(bytes.NewReader(b)))
	if s.segments != 2 || s.clusters != 2 || s.blocks != 4 || s.keys != 2 || len(s.tags) != 4 {
		t.Fatalf("%+v", s)
	}
	if s.hdrs[1].Tracks[0].CodecID != "V_MPEG4/ISO/AVC" || len(s.hdrs[1].Tracks) != 1 || string(s.payloads[3]) != "delta" {
		t.Fatalf("second segment %+v", s.hdrs[1])
	}
}

func TestBlockGroupAndAudioTrack(t *testing.T) {
	var sf [8]byte
	copy(sf[:], AppendUintWidth(nil, 0, 0x40E7700000000000, 8)[2:]) // 48000.0
	b := bytes.Join([][]byte{
		ebmlHeader(), unknown(IDSegment),
		el(IDTracks, el(IDTrackEntry, uintEl(IDTrackNumber, 2), uintEl(IDTrackType, 2), strEl(IDCodecID, "A_AAC"),
			el(IDAudio, el(IDSamplingFreq, sf[:]), uintEl(IDChannels, 2), uintEl(IDBitDepth, 16)))),
		cluster(5,
			el(IDBlockGroup, el(IDBlock, []byte{0x82, 0, 0, 0}, []byte("k"))),
			el(IDBlockGroup, el(IDBlock, []byte{0x82, 0, 20, 0}, []byte("d")), uintEl(0xFB, 1))),
	}, nil)
	s := summarize(t, NewReader(bytes.NewReader(b)))
	tr := s.hdrs[0].Tracks[0]
	if tr.SamplingFrequency != 48000 || tr.Channels != 2 || tr.BitDepth != 16 || tr.Number != 2 || s.hdrs[0].TimecodeScale != DefaultTimecodeScale {
		t.Fatalf("audio track %+v", tr)
	}
	if s.blocks != 2 || s.keys != 1 || string(s.payloads[1]) != "d" {
		t.Fatalf("blocks %d keys %d", s.blocks, s.keys)
	}
}

func TestErrorsNameWhatAndWhere(t *testing.T) {
	head := segmentHead("V_TEST")
	laced := append(append([]byte(nil), head...), cluster(0, simpleBlock(1, 0, 0x82, "x"))...)
	big := append(append([]byte(nil), head...), cluster(0, simpleBlock(1, 0, 0x80, strings.Repeat("x", 2000)))...)
	badSize := append(append([]byte(nil), head...), 0x1F, 0x43, 0xB6, 0x75, 0x00)
	for _, c := range []struct {
		name, input string
		opts        ReaderOptions
		want        string
		is          error
	}{
		{"laced", string(laced), ReaderOptions{}, fmt.Sprintf("laced block at offset %d", len(head)+18), ErrLacing},
		{"too large", string(big), ReaderOptions{MaxElementSize: 1000}, fmt.Sprintf("SimpleBlock (0xA3) at offset %d is 2004 bytes, over the 1000-byte limit", len(head)+18), ErrTooLarge},
		{"bad size", string(badSize), ReaderOptions{}, fmt.Sprintf("invalid element size at offset %d (Cluster (0x1F43B675))", len(head)+4), ErrInvalidVint},
		{"head too large", string(head), ReaderOptions{MaxHeaderSize: 50}, "segment head at offset 0 exceeds 50 bytes", ErrTooLarge},
		{"truncated", string(head[:len(head)-3]), ReaderOptions{}, "unexpected EOF", io.ErrUnexpectedEOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := NewReaderOptions(strings.NewReader(c.input), c.opts)
			var err error
			for err == nil {
				_, err = r.NextEvent()
			}
			if !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) {
				t.Fatalf("error %q; want it to contain %q and wrap %v", err, c.want, c.is)
			}
			if _, again := r.NextEvent(); again != err {
				t.Fatalf("error not sticky: %v", again)
			}
		})
	}
}

func TestTruncatedFixture(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	r := NewReader(bytes.NewReader(fx[:len(fx)/2]))
	var err error
	for err == nil {
		_, err = r.NextEvent()
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "SimpleBlock (0xA3) at offset") {
		t.Fatalf("truncated input: %v", err)
	}
}

func TestResyncSkipsDamage(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	// Zero the ID of the third cluster: resync skips to the fourth.
	bad := append([]byte(nil), fx...)
	n, at := 0, 0
	for i := 0; i+4 < len(bad); i++ {
		if bytes.Equal(bad[i:i+4], []byte{0x1F, 0x43, 0xB6, 0x75}) {
			if n++; n == 3 {
				copy(bad[i:], []byte{0, 0, 0, 0})
				at = i
				break
			}
		}
	}
	// Without Resync: a SyntaxError at the damage.
	r := NewReader(bytes.NewReader(bad))
	var err error
	for err == nil {
		_, err = r.NextEvent()
	}
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != int64(at) {
		t.Fatalf("damaged input: %v, want a SyntaxError at %d", err, at)
	}
	var ranges [][2]int64
	r = NewReaderOptions(bytes.NewReader(bad), ReaderOptions{Resync: true, Skipped: func(off, l int64, _ error) { ranges = append(ranges, [2]int64{off, l}) }})
	s := summarize(t, r)
	if s.clusters != officialClusters-1 || s.blocks != officialBlocks-30 || len(ranges) != 1 || ranges[0][0] != int64(at) {
		t.Fatalf("after resync: %d clusters, %d blocks, skipped %v", s.clusters, s.blocks, ranges)
	}
	if r.SkippedBytes() != ranges[0][1] || s.clusterOffsets[2] != ranges[0][0]+ranges[0][1] {
		t.Fatalf("skipped %d bytes, ranges %v, next cluster at %d", r.SkippedBytes(), ranges, s.clusterOffsets[2])
	}
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Skipped elements stream through: a 256 MiB Void inside a cluster costs no
// memory.
func TestSkippingIsBounded(t *testing.T) {
	const voidSize = 256 << 20
	head := append(segmentHead("V_TEST"), unknown(IDCluster, AppendUintWidth(nil, IDTimecode, 0, 8))...)
	void := AppendSizeWidth(AppendID(nil, IDVoid), voidSize, 8)
	tail := simpleBlock(1, 0, 0x80, "after")
	r := NewReader(io.MultiReader(bytes.NewReader(head), bytes.NewReader(void), io.LimitReader(zeros{}, voidSize), bytes.NewReader(tail)))
	s := summarize(t, r)
	if s.blocks != 1 || string(s.payloads[0]) != "after" {
		t.Fatalf("%d blocks", s.blocks)
	}
	if cap(r.buf) > 2*readChunk {
		t.Fatalf("buffer grew to %d bytes", cap(r.buf))
	}
}

func FuzzReader(f *testing.F) {
	f.Add(smallStream())
	f.Add(segmentHead("V_TEST"))
	f.Add(append(segmentHead("V_TEST"), cluster(7, el(IDBlockGroup, el(IDBlock, []byte{0x81, 0, 0, 0}, []byte("x"))))...))
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	for _, s := range serviceShapes() {
		f.Add(s.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, resync := range []bool{false, true} {
			r := NewReaderOptions(bytes.NewReader(b), ReaderOptions{Resync: resync, MaxElementSize: 1 << 16, MaxHeaderSize: 1 << 16})
			for i := 0; ; i++ {
				if i > len(b)+10 {
					t.Fatalf("more events (%d) than input bytes (%d)", i, len(b))
				}
				_, err := r.NextEvent()
				if err != nil {
					break
				}
			}
			if cap(r.buf) > 1<<16+2*readChunk {
				t.Fatalf("buffer of %d bytes", cap(r.buf))
			}
		}
	})
}
