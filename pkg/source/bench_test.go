package source

import (
	"bytes"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// BenchmarkConsume runs the fetcher over a GetMedia response of 10
// fragments of 30 frames of 8 KB each, with the service's tags.
func BenchmarkConsume(b *testing.B) {
	var in []byte
	frame := bytes.Repeat([]byte{0xAB}, 8<<10)
	for i := range 10 {
		n := strconv.Itoa(10000 + i)
		in = mkv.AppendHeader(in, &mkv.Header{Tracks: []mkv.Track{{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: []byte{1, 2}, PixelWidth: 2, PixelHeight: 2}}})
		in = mkv.AppendTags(in, []mkv.SimpleTag{{Name: mkv.TagFragmentNumber, Value: n}, {Name: mkv.TagProducerTimestamp, Value: "1800000000.500"}})
		in = mkv.AppendClusterStart(in, uint64(1000*i))
		for k := range 30 {
			flags := byte(0)
			if k == 0 {
				flags = mkv.FlagKeyframe
			}
			in = mkv.AppendSimpleBlock(in, 1, int16(33*k), flags, frame)
		}
		in = mkv.AppendTags(in, []mkv.SimpleTag{{Name: mkv.TagContinuationToken, Value: n}})
	}
	s := &Source{cfg: Config{StreamName: "cam1", Clock: clock.Real{}, Logger: slog.New(slog.DiscardHandler), GapThreshold: DefaultGapThreshold}}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		fe := &fetcher{s: s, w: io.Discard}
		fe.lastFrame.Store(time.Now().UnixNano())
		if err := fe.consume(bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
		if fe.frames != 300 {
			b.Fatalf("%d frames written, want 300", fe.frames)
		}
	}
}
