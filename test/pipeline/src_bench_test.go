package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// BenchmarkSrcGlassToGlass measures, per decoded frame, the time from the
// producer's capture (the buffer timestamp kvssink stamps the frame with:
// the wall clock at capture, for a live source) to the frame leaving
// avdec_h264 behind kvssrc, with kvssink and kvssrc both live on the local
// endpoint. It reports the median, 95th percentile and maximum over the
// frames of one 20-second stream, for 0.5 s and 1 s key-frame intervals
// (kvssink cuts a fragment at every key frame; the service delivers whole
// fragments).
//
//	go test -run - -bench SrcGlassToGlass -benchtime 1x ./test/pipeline
func BenchmarkSrcGlassToGlass(b *testing.B) {
	for _, gop := range []int{15, 30} {
		b.Run(fmt.Sprintf("fragment=%dms", gop*1000/30), func(b *testing.B) {
			var all []time.Duration
			for i := 0; i < b.N; i++ {
				all = append(all, glassToGlass(b, fmt.Sprintf("g2g-%d-%d", gop, i), gop)...)
			}
			slices.Sort(all)
			if len(all) == 0 {
				b.Fatal("no frame measured")
			}
			ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
			b.ReportMetric(ms(all[len(all)/2]), "ms-median")
			b.ReportMetric(ms(all[len(all)*95/100]), "ms-p95")
			b.ReportMetric(ms(all[len(all)-1]), "ms-max")
			b.ReportMetric(float64(len(all)), "frames")
		})
	}
}

var (
	fragmentRE = regexp.MustCompile(`kvs-fragment-received, .*producer-timestamp=\(guint64\)(\d+), .*stream-time=\(guint64\)(\d+)`)
	ptsRE      = regexp.MustCompile(`last-message = chain .*pts: (\d+):(\d\d):(\d\d)\.(\d{9})`)
)

func glassToGlass(b *testing.B, stream string, gop int) []time.Duration {
	dir := b.TempDir()
	srv, err := kvslocal.New(kvslocal.Config{Dir: dir, Credentials: []kvslocal.Credential{{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey}}})
	if err != nil {
		b.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	ep := &endpoint{srv: srv, url: url, dir: dir}
	const frames = 600 // 20 s at 30 fps
	prod := fmt.Sprintf("videotestsrc is-live=true num-buffers=%d pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1 ! "+
		"x264enc key-int-max=%d tune=zerolatency speed-preset=ultrafast bitrate=2000 ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! %s",
		frames, gop, kvssink(stream))
	p := startGstB(b, ep, prod)
	// The stream exists once the first fragment is listed.
	deadline := time.Now().Add(60 * time.Second)
	for len(listFragments(b, ep.url, stream)) == 0 {
		if time.Now().After(deadline) {
			b.Fatal("no fragment within 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	gst := testenv.Tool(b, "gst-launch-1.0", "gstreamer1.0-tools")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gst, strings.Fields("-m -v kvssrc stream-name="+stream+" start-selector=now idle-timeout=4 ! matroskademux ! h264parse ! avdec_h264 ! fakesink silent=false sync=false")...)
	cmd.Env = gstEnv(testenv.PluginDir(b), ep)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	type frame struct {
		pts     time.Duration
		decoded time.Time
	}
	type fragment struct {
		producer time.Time
		stream   time.Duration
	}
	var decoded []frame
	var frags []fragment
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		now := time.Now() // as the line arrives: g_print flushes every line
		line := sc.Text()
		if m := ptsRE.FindStringSubmatch(line); m != nil {
			h, _ := strconv.Atoi(m[1])
			mi, _ := strconv.Atoi(m[2])
			s, _ := strconv.Atoi(m[3])
			ns, _ := strconv.Atoi(m[4])
			decoded = append(decoded, frame{pts: time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute + time.Duration(s)*time.Second + time.Duration(ns), decoded: now})
		} else if m := fragmentRE.FindStringSubmatch(line); m != nil {
			pt, _ := strconv.ParseInt(m[1], 10, 64)
			st, _ := strconv.ParseInt(m[2], 10, 64)
			frags = append(frags, fragment{producer: time.Unix(0, pt), stream: time.Duration(st)})
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatalf("kvssrc: %v", err)
	}
	p.wait(b, "producer")
	slices.SortFunc(frags, func(x, y fragment) int { return int(x.stream - y.stream) })
	var lat []time.Duration
	for _, f := range decoded {
		// The fragment the frame belongs to: the last that starts at or
		// before its stream time.
		i := -1
		for j, fr := range frags {
			if fr.stream <= f.pts {
				i = j
			}
		}
		if i < 0 {
			continue
		}
		captured := frags[i].producer.Add(f.pts - frags[i].stream)
		lat = append(lat, f.decoded.Sub(captured))
	}
	b.Logf("%s: %d frames decoded, %d fragments", stream, len(decoded), len(frags))
	return lat
}

// startGstB is startGst for benchmarks.
func startGstB(b *testing.B, ep *endpoint, pipeline string) *bg {
	b.Helper()
	return startGst(b, ep, 180*time.Second, pipeline)
}
