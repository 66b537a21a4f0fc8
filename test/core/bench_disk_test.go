package core

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// BenchmarkDiskStore is BenchmarkStream's workload (600 synthetic frames of
// 720p 2 Mb/s and 1080p 8 Mb/s sizes per iteration, offline, to the local
// endpoint) with the in-memory store and with storage-path, side by side.
// It reports the process's CPU time per 1000 frames (user+sys, endpoint
// included: the difference between the two is the disk store's cost), and
// for the disk store its write amplification: bytes written to the journal
// (record framing and the Matroska header of each fragment included) per
// byte sent.
func BenchmarkDiskStore(b *testing.B) {
	benchCPD, _ := officialFrames(b)
	for _, c := range []struct {
		name string
		size int
	}{{"720p-2Mbps", 7600}, {"1080p-8Mbps", 32500}} {
		for _, store := range []string{"memory", "disk"} {
			b.Run(c.name+"/"+store, func(b *testing.B) {
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
				dir := b.TempDir()
				var written, sent int64
				b.SetBytes(int64(n * c.size))
				b.ReportAllocs()
				cpu0 := cpuTime()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					cfg := config(url, fmt.Sprintf("bench-%s-%s-%d", store, c.name, i))
					cfg.StreamingType = sink.Offline
					cfg.Logger = nil
					if store == "disk" {
						cfg.StoragePath = dir
					}
					m := streamOnce(b, cfg, benchCPD, frames)
					written += m.DiskWritten
					sent += int64(m.BytesSent)
					b.StopTimer()
					if got := summarise(b, srv, cfg.StreamName).allFrames; got != n {
						b.Fatalf("stored %d of %d frames", got, n)
					}
					b.StartTimer()
				}
				b.StopTimer()
				cpu := cpuTime() - cpu0
				b.ReportMetric(float64(cpu.Milliseconds())*1000/float64(b.N*n), "cpu-ms/1000frames")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/frame")
				if store == "disk" {
					if written == 0 {
						b.Fatal("nothing was written to storage-path")
					}
					b.ReportMetric(float64(written)/float64(sent), "disk-bytes/sent-byte")
				}
			})
		}
	}
}

// cpuTime is the user+system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
