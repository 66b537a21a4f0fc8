package mkv

import (
	"bytes"
	"io"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// The official producer's header, rebuilt field by field, must be byte-equal
// to what it sent (the first 0x116 bytes of its PutMedia body).
func TestHeaderMatchesOfficialProducer(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	var h Header
	copy(h.SegmentUID[:], fx[0x36:0x46])
	h.Title = "Kinesis Video SDK"
	h.MuxingApp = "Kinesis Video SDK 1.1.0"
	h.WritingApp = "Kinesis Video SDK 1.1.0"
	cpd := fx[0xE9 : 0xE9+0x2C]
	h.Tracks = []Track{{
		Number: 1, UID: 1, Type: TrackTypeVideo, Name: "kinesis_video",
		CodecID: "V_MPEG4/ISO/AVC", PixelWidth: 320, PixelHeight: 240, CodecPrivate: cpd,
	}}
	got := AppendHeader(nil, &h)
	want := fx[:0x115]
	if !bytes.Equal(got, want) {
		t.Fatalf("header differs from the official producer's\n got %x\nwant %x", got, want)
	}

	// The first cluster and the first SimpleBlock's header.
	tc, err := ParseUint(fx[0x11C:0x124])
	if err != nil {
		t.Fatal(err)
	}
	got = AppendClusterStart(nil, tc)
	got = AppendSimpleBlockHeader(got, 1, 0, FlagKeyframe, 0x1AA4-4)
	if want := fx[0x115 : 0x115+len(got)]; !bytes.Equal(got, want) {
		t.Fatalf("cluster start differs\n got %x\nwant %x", got, want)
	}
}

func TestSizeEncoding(t *testing.T) {
	cases := []struct {
		n    int64
		want []byte
	}{
		{0, []byte{0x80}},
		{126, []byte{0xFE}},
		{127, []byte{0x40, 0x7F}}, // 0xFF would mean "unknown"
		{16382, []byte{0x7F, 0xFE}},
		{16383, []byte{0x20, 0x3F, 0xFF}},
		{UnknownSize, []byte{0xFF}},
	}
	for _, c := range cases {
		got := AppendSize(nil, c.n)
		if !bytes.Equal(got, c.want) {
			t.Errorf("AppendSize(%d) = %x, want %x", c.n, got, c.want)
		}
		v, n, err := ReadSize(got)
		if err != nil || n != len(got) || v != c.n {
			t.Errorf("ReadSize(%x) = %d,%d,%v; want %d", got, v, n, err, c.n)
		}
	}
	if _, _, err := ReadSize([]byte{0x00}); err == nil {
		t.Error("ReadSize(00) accepted an invalid first byte")
	}
	if _, _, err := ReadSize([]byte{0x40}); err == nil {
		t.Error("ReadSize accepted a truncated size")
	}
}

func TestTagsLayout(t *testing.T) {
	fx := testenv.ReadFixture(t, "official-putmedia.mkv")
	got := AppendTags(nil, []SimpleTag{{Name: TagEndOfFragment}})
	if !bytes.HasSuffix(fx, got) {
		t.Fatalf("EOFR tags differ from the official producer's trailer\n got %x\nwant %x", got, fx[len(fx)-len(got):])
	}
}

func BenchmarkAppendFrame1080p(b *testing.B) {
	payload := make([]byte, 250_000) // an 8 Mb/s 1080p keyframe
	buf := make([]byte, 0, 1<<20)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendSimpleBlock(buf[:0], 1, int16(i%1000), FlagKeyframe, payload)
	}
}

// Whatever frames the writer is given, the reader gives them back.
func FuzzWriteRead(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint16(33), uint8(3))
	f.Add([]byte{}, uint16(0), uint8(1))
	f.Fuzz(func(t *testing.T, payload []byte, step uint16, n uint8) {
		var h Header
		h.Tracks = []Track{{Number: 1, UID: 1, Type: TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", PixelWidth: 16, PixelHeight: 16, CodecPrivate: payload}}
		b := AppendHeader(nil, &h)
		b = AppendClusterStart(b, 1000)
		for i := 0; i < int(n%16); i++ {
			b = AppendSimpleBlock(b, 1, int16(int(step)*i%30000), FlagKeyframe, append(payload, byte(i)))
		}
		b = AppendTags(b, []SimpleTag{{Name: TagEndOfFragment, Value: string(payload)}})
		r := NewReader(bytes.NewReader(b))
		blocks := 0
		for {
			ev, err := r.NextEvent()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reading what the writer wrote: %v", err)
			}
			switch ev.Kind {
			case EventSegmentStart:
				if !bytes.Equal(ev.Header.Tracks[0].CodecPrivate, payload) {
					t.Fatal("CodecPrivate changed")
				}
			case EventBlock:
				if want := append(append([]byte(nil), payload...), byte(blocks)); !bytes.Equal(ev.Block.Data, want) || ev.Block.RelTimecode != int16(int(step)*blocks%30000) {
					t.Fatalf("block %d changed", blocks)
				}
				blocks++
			case EventTags:
				if ev.Tags[0].Value != string(payload) {
					t.Fatal("tag value changed")
				}
			}
		}
		if blocks != int(n%16) {
			t.Fatalf("%d blocks read, %d written", blocks, n%16)
		}
	})
}
