package pipeline

import (
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// ptsList runs ffprobe on path and returns the pts_time of every packet (in
// decoding order) or every decoded frame (in presentation order), in
// seconds.
func ptsList(t *testing.T, path, entry string) []float64 {
	t.Helper()
	ffprobe := testenv.Tool(t, "ffprobe", "ffmpeg")
	out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", entry+"=pts_time",
		"-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s %s: %v", entry, path, err)
	}
	var ts []float64
	for _, l := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe %s %s: %q: %v", entry, path, l, err)
		}
		ts = append(ts, v)
	}
	return ts
}

// An elementary stream with B-frames read from a file (filesrc ! h264parse
// or h265parse) has decoding times only; kvssink derives the presentation
// times from the picture order counts, so that the stream read back from
// the endpoint holds every frame, each with the presentation time mp4mux
// stored for the same encode, and a decoder shows all of them in order.
func TestReorderedElementaryStream(t *testing.T) {
	const frames = 600
	for _, c := range []struct {
		name, codec, enc string
	}{
		{"h264", "h264", "x264enc bframes=3 b-pyramid=true key-int-max=60"},
		// Open GOPs: I pictures that are not IDR, with leading B-frames.
		{"h264-opengop", "h264", "x264enc bframes=3 b-pyramid=true key-int-max=60 option-string=open-gop=1"},
		// x265 makes open GOPs by default: CRA pictures with RASL pictures.
		{"h265", "h265", "x265enc option-string=bframes=3:b-pyramid=1:keyint=60:min-keyint=60:scenecut=0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := filepath.Join(dir, "in."+c.codec)
			ref := filepath.Join(dir, "ref.mp4")
			caps := "video/x-" + c.codec
			if r := launch(t, nil, 300*time.Second, "videotestsrc num-buffers="+strconv.Itoa(frames)+" pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 ! "+c.enc+" ! "+caps+",stream-format=byte-stream ! tee name=t t. ! queue ! filesink location="+raw+" t. ! queue ! "+c.codec+"parse ! mp4mux ! filesink location="+ref); r.rc != 0 {
				t.Fatalf("making the input: %s", r.output)
			}
			refPackets := ptsList(t, ref, "packet")
			refFrames := ptsList(t, ref, "frame")
			if len(refPackets) != frames || len(refFrames) != frames {
				t.Fatalf("mp4mux reference: %d packets, %d frames, want %d", len(refPackets), len(refFrames), frames)
			}
			reordered := false
			for i := 1; i < len(refPackets); i++ {
				reordered = reordered || refPackets[i] < refPackets[i-1]
			}
			if !reordered {
				t.Fatal("the encode has no B-frames out of order: the test would prove nothing")
			}
			// The element's caps take avc/hvc1 first: the parser converts,
			// and the frames carry the parameter sets in codec_data.
			for _, format := range []string{"", "byte-stream"} {
				name := "default"
				filter := ""
				if format != "" {
					name, filter = format, " ! "+caps+",stream-format="+format+",alignment=au"
				}
				t.Run(name, func(t *testing.T) {
					ep := startEndpoint(t)
					stream := "reorder-" + strings.ReplaceAll(c.name, "-", "") + "-" + strings.ReplaceAll(name, "-", "")
					r := launch(t, ep, 300*time.Second, "filesrc location="+raw+" ! "+c.codec+"parse"+filter+" ! "+kvssink(stream))
					if r.rc != 0 {
						t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
					}
					if strings.Contains(r.output, "picture order count") {
						t.Errorf("warnings about picture order counts:\n%s", r.output)
					}
					// The PutMedia body passes the validators (mkvinfo does
					// not take GetMedia's stream of segments); GetMedia's
					// answer is what a consumer reads.
					validateCodec(t, ep.capture(t, stream, 1)[0], frames, c.codec)
					path := ep.getMedia(t, stream)
					comparePTS(t, "packet (decoding order)", ptsList(t, path, "packet"), refPackets)
					got := ptsList(t, path, "frame")
					comparePTS(t, "frame (presentation order)", got, refFrames)
					for i := 1; i < len(got); i++ {
						if got[i] <= got[i-1] {
							t.Fatalf("decoded frame %d at %.3f s is not after frame %d at %.3f s", i, got[i], i-1, got[i-1])
						}
					}
				})
			}
		})
	}
}

// comparePTS checks, entry by entry, that got and want step alike: each
// time relative to the first lies within a millisecond (Matroska's time
// code scale) of the reference's.
func comparePTS(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries read back, mp4mux has %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		d := (got[i] - got[0]) - (want[i] - want[0])
		if math.Abs(d) > 0.0015 {
			if bad < 5 {
				t.Errorf("%s %d: %.4f s after the first, mp4mux has %.4f s", what, i, got[i]-got[0], want[i]-want[0])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d presentation times differ from mp4mux's", what, bad, len(got))
	}
}
