package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// Each codec goes through kvssink from an encoded input file and must come
// out of the endpoint intact: the independent tools accept it and decoding
// it gives exactly the samples decoding the input gives.
func TestCodecsDecodeLikeTheirInput(t *testing.T) {
	cases := []struct {
		name, encode, parse, decode, kind string
	}{
		{"h264", "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 ! h264parse", "h264parse", "avdec_h264", "v"},
		{"h264 byte-stream", "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 ! h264parse", "h264parse ! video/x-h264,stream-format=byte-stream", "avdec_h264", "v"},
		{"h265", "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! x265enc key-int-max=30 ! h265parse", "h265parse", "avdec_h265", "v"},
		{"h265 hev1", "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! x265enc key-int-max=30 ! h265parse", "h265parse ! video/x-h265,stream-format=hev1", "avdec_h265", "v"},
		{"h265 byte-stream", "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! x265enc key-int-max=30 ! h265parse", "h265parse ! video/x-h265,stream-format=byte-stream", "avdec_h265", "v"},
		{"aac", "audiotestsrc num-buffers=150 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse", "aacparse", "avdec_aac", "a"},
		{"alaw", "audiotestsrc num-buffers=150 samplesperbuffer=800 ! audio/x-raw,rate=8000,channels=1 ! alawenc", "identity", "alawdec", "a"},
		{"mulaw", "audiotestsrc num-buffers=150 samplesperbuffer=800 ! audio/x-raw,rate=8000,channels=2 ! mulawenc", "identity", "mulawdec", "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.mkv")
			if r := launch(t, nil, 60*time.Second, c.encode+" ! matroskamux ! filesink location="+in); r.rc != 0 {
				t.Fatalf("making the input: %s", r.output)
			}
			ep := startEndpoint(t)
			stream := "codec-" + strings.ReplaceAll(c.name, " ", "-")
			r := launch(t, ep, 120*time.Second, "filesrc location="+in+" ! matroskademux ! "+c.parse+" ! "+kvssink(stream))
			if r.rc != 0 {
				t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
			}
			got := ep.capture(t, stream, 1)[0]
			independentTools(t, got, c.kind)
			if n, m := packets(t, in, c.kind), packets(t, got, c.kind); n != m || n == 0 {
				t.Fatalf("input has %d packets, the endpoint received %d", n, m)
			}
			a, b := decodedHash(t, in, c.decode, c.kind), decodedHash(t, got, c.decode, c.kind)
			if a != b {
				t.Fatalf("decoded output differs from the input's: %s vs %s", a, b)
			}
			t.Logf("%s: %d packets, decoded samples identical to the input (sha256 %s…)", c.name, packets(t, got, c.kind), a[:12])
		})
	}
}

func independentTools(t *testing.T, path, kind string) {
	t.Helper()
	mkvinfo := testenv.Tool(t, "mkvinfo", "mkvtoolnix")
	if out, err := exec.Command(mkvinfo, "-v", path).CombinedOutput(); err != nil {
		t.Fatalf("mkvinfo: %v\n%s", err, tail(out))
	}
	mkvmerge := testenv.Tool(t, "mkvmerge", "mkvtoolnix")
	if out, err := exec.Command(mkvmerge, "-q", "-o", filepath.Join(t.TempDir(), "r.mkv"), path).CombinedOutput(); err != nil {
		t.Fatalf("mkvmerge: %v\n%s", err, out)
	}
	cmd := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", kind+":0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if _, err := cmd.Output(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v %s", err, stderr.String())
	}
}

// packets counts the stream's packets with ffprobe.
func packets(t *testing.T, path, kind string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-select_streams", kind+":0", "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// decodedHash decodes a Matroska file with GStreamer and hashes the raw
// samples.
func decodedHash(t *testing.T, path, decoder, kind string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), "raw")
	parse := map[string]string{"avdec_h264": "h264parse ! ", "avdec_h265": "h265parse ! ", "avdec_aac": "aacparse ! "}[decoder]
	conv := "videoconvert ! video/x-raw,format=I420"
	if kind == "a" {
		conv = "audioconvert ! audio/x-raw,format=S16LE"
	}
	p := "filesrc location=" + path + " ! matroskademux ! " + parse + decoder + " ! " + conv + " ! filesink location=" + raw
	if r := launch(t, nil, 60*time.Second, p); r.rc != 0 {
		t.Fatalf("decoding %s: %s", path, r.output)
	}
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if n, _ := io.Copy(h, f); n == 0 {
		t.Fatalf("decoding %s gave no samples", path)
	}
	return hex.EncodeToString(h.Sum(nil))
}
