package core

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// BenchmarkStream streams synthetic frames of the sizes of the bench inputs
// (720p 2 Mb/s: 7.6 KB; 1080p 8 Mb/s: 32.5 KB; GOP 60) through the core to
// the local endpoint, offline, and reports throughput, allocations and the
// time per frame. Each iteration is one stream of 600 frames (Start to
// Finish).
func BenchmarkStream(b *testing.B) {
	benchCPD, _ := officialFrames(b) // parsed once, not in every sub-benchmark round
	for _, c := range []struct {
		name string
		size int
	}{{"720p-2Mbps", 7600}, {"1080p-8Mbps", 32500}} {
		b.Run(c.name, func(b *testing.B) {
			const n = 600
			frames := make([]sink.Frame, n)
			for i := range frames {
				d := make([]byte, c.size)
				for j := 0; j+4 <= len(d); j += 997 {
					d[j], d[j+1], d[j+2], d[j+3] = 0, 0, 0, 1
				}
				frames[i] = sink.Frame{PTS: time.Duration(i) * time.Second / 30, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: i%60 == 0, Data: d}
			}
			srv, url := startEndpoint(b, withoutCaptures)
			b.SetBytes(int64(n * c.size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cfg := config(url, fmt.Sprintf("bench-%s-%d", c.name, i))
				cfg.StreamingType = sink.Offline
				cfg.Logger = nil
				streamOnce(b, cfg, benchCPD, frames)
				b.StopTimer()
				if got := summarise(b, srv, cfg.StreamName).allFrames; got != n {
					b.Fatalf("stored %d of %d frames", got, n)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
		})
	}
}

// streamOnce streams frames (H.264 avc with CodecPrivate cpd) through a
// new core into cfg's stream, to the end, and returns its metrics.
func streamOnce(b *testing.B, cfg sink.Config, cpd []byte, frames []sink.Frame) sink.Metrics {
	b.Helper()
	s, err := sink.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := s.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}); err != nil {
		b.Fatal(err)
	}
	for _, f := range frames {
		if err := s.Put(ctx, f); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Finish(ctx); err != nil {
		b.Fatal(err)
	}
	return s.Metrics()
}
