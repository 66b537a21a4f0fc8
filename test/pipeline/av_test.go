package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// Encoding branches of the audio and video tests: three seconds each.
const (
	h264Branch  = "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 bframes=0 ! h264parse"
	h265Branch  = "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x265enc key-int-max=30 ! h265parse"
	voaacBranch = "audiotestsrc num-buffers=130 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse"
	avaacBranch = "audiotestsrc num-buffers=140 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse"
	alawBranch  = "audiotestsrc num-buffers=150 samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=1 ! alawenc"
	mulawBranch = "audiotestsrc num-buffers=150 samplesperbuffer=160 ! audio/x-raw,rate=8000,channels=2 ! mulawenc"
)

// avInput encodes a video and an audio branch into one Matroska file.
func avInput(t *testing.T, video, audio, mux string) string {
	t.Helper()
	ext := map[string]string{"matroskamux": "mkv", "mp4mux": "mp4"}[mux]
	in := filepath.Join(t.TempDir(), "in."+ext)
	if r := launch(t, nil, 120*time.Second, video+" ! queue ! mux. "+audio+" ! queue ! mux. "+mux+" name=mux ! filesink location="+in); r.rc != 0 {
		t.Fatalf("making the input: %s", r.output)
	}
	return in
}

var buildKvsgo = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(testenv.Root(), "build", "kvsgo")
	cmd := exec.Command("go", "build", "-o", bin, "./examples/kvsgo")
	cmd.Dir = testenv.Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building kvsgo: %v\n%s", err, out)
	}
	return bin, nil
})

// kvsgoGet reads a whole stream back with the kvsgo command-line tool
// (GetMedia, fragments joined into one file) and returns the file.
func kvsgoGet(t *testing.T, ep *endpoint, stream string, args ...string) string {
	t.Helper()
	bin, err := buildKvsgo()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), stream+".mkv")
	cmd := exec.Command(bin, append([]string{"get", "-stream", stream, "-endpoint", ep.url, "-o", out}, args...)...)
	cmd.Env = gstEnv(testenv.PluginDir(t), ep)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kvsgo get: %v\n%s", err, b)
	}
	return out
}

// firstPTS is the time of a stream's first packet, by ffprobe.
func firstPTS(t *testing.T, path, kind string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", kind+":0", "-show_entries", "packet=pts_time",
		"-of", "csv=p=0", "-read_intervals", "%+#1", path).Output()
	if err != nil {
		t.Fatalf("ffprobe first packet: %v", err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0]), 64)
	if err != nil {
		t.Fatalf("ffprobe first packet of %s: %q", kind, out)
	}
	return v
}

// streamCodecs lists the codec of every stream ffprobe sees.
func streamCodecs(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe streams: %v", err)
	}
	return strings.Join(strings.Fields(string(out)), ",")
}

// mediaType is the stream's MediaType as DescribeStream returns it.
func (ep *endpoint) mediaType(t *testing.T, stream string) string {
	t.Helper()
	creds := aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""))
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: ep.url, Region: "us-west-2", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := ctl.DescribeStream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	return info.MediaType
}

// checkAV compares what the endpoint serves for stream with the input file:
// both streams present, the same packet counts, the same A/V offset within
// one video frame, and both tracks decode to the same samples.
func checkAV(t *testing.T, in, got, vdec, adec string) {
	t.Helper()
	independentTools(t, got, "v")
	independentTools(t, got, "a")
	if a, b := streamCodecs(t, in), streamCodecs(t, got); a != b {
		t.Fatalf("streams %q, the input has %q", b, a)
	}
	for _, kind := range []string{"v", "a"} {
		if n, m := packets(t, in, kind), packets(t, got, kind); n != m || n == 0 {
			t.Fatalf("%s: the input has %d packets, the endpoint served %d", kind, n, m)
		}
	}
	inOff := firstPTS(t, in, "a") - firstPTS(t, in, "v")
	gotOff := firstPTS(t, got, "a") - firstPTS(t, got, "v")
	if math.Abs(inOff-gotOff) > 1.0/30 {
		t.Fatalf("A/V offset %.4f s, the input's %.4f s: more than one video frame apart", gotOff, inOff)
	}
	for _, c := range []struct{ dec, kind string }{{vdec, "v"}, {adec, "a"}} {
		a, b := avDecodedHash(t, in, c.dec, c.kind), avDecodedHash(t, got, c.dec, c.kind)
		if a != b {
			t.Fatalf("%s decodes to %s, the input to %s", c.dec, b, a)
		}
	}
	t.Logf("%s: %s, %d video and %d audio packets, A/V offset %.4f s (input %.4f s), both tracks decode like the input",
		filepath.Base(got), streamCodecs(t, got), packets(t, got, "v"), packets(t, got, "a"), gotOff, inOff)
}

// The official audio and video pipelines stream both tracks into one
// stream: "sink." picks the pad by caps, or the pads are named; the
// content type, track numbers and names are the official element's; what
// GetMedia serves (joined by kvsgo get) has every packet of both tracks
// and decodes like the input.
func TestAVPipelines(t *testing.T) {
	cases := []struct {
		name, video, audio, vparse, aparse, vdec, adec, link, content, codecs string
	}{
		{"h264 aac voaacenc", h264Branch, voaacBranch, "h264parse", "aacparse", "avdec_h264", "avdec_aac", "sink.", "video/h264,audio/aac", "V_MPEG4/ISO/AVC,A_AAC"},
		{"h264 aac avenc_aac named pads", h264Branch, avaacBranch, "h264parse", "aacparse", "avdec_h264", "avdec_aac", "named", "video/h264,audio/aac", "V_MPEG4/ISO/AVC,A_AAC"},
		{"h264 aac audio first", h264Branch, strings.Replace(voaacBranch, "audiotestsrc", "audiotestsrc timestamp-offset=100000000", 1), "h264parse", "aacparse", "avdec_h264", "avdec_aac", "audio first", "video/h264,audio/aac", "V_MPEG4/ISO/AVC,A_AAC"},
		{"h265 aac", h265Branch, voaacBranch, "h265parse", "aacparse", "avdec_h265", "avdec_aac", "sink.", "video/h265,audio/aac", "V_MPEGH/ISO/HEVC,A_AAC"},
		{"h264 alaw", h264Branch, alawBranch, "h264parse", "audio/x-alaw", "avdec_h264", "alawdec", "sink.", "video/h264,audio/alaw", "V_MPEG4/ISO/AVC,A_MS/ACM"},
		{"h264 mulaw", h264Branch, mulawBranch, "h264parse", "audio/x-mulaw", "avdec_h264", "mulawdec", "named", "video/h264,audio/mulaw", "V_MPEG4/ISO/AVC,A_MS/ACM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := avInput(t, c.video, c.audio, "matroskamux")
			ep := startEndpoint(t)
			stream := "av-" + strings.ReplaceAll(c.name, " ", "-")
			demux := "filesrc location=" + in + " ! matroskademux name=d "
			var p string
			switch c.link {
			case "sink.":
				p = demux + "d.video_0 ! queue ! " + c.vparse + " ! " + kvssink(stream, "name=sink") + " d.audio_0 ! queue ! " + c.aparse + " ! sink."
			case "named":
				p = demux + kvssink(stream, "name=sink") + " d.video_0 ! queue ! " + c.vparse + " ! sink.video_0 d.audio_0 ! queue ! " + c.aparse + " ! sink.audio_0"
			case "audio first":
				p = demux + "d.audio_0 ! queue ! " + c.aparse + " ! " + kvssink(stream, "name=sink") + " d.video_0 ! queue ! " + c.vparse + " ! sink."
			}
			r := launch(t, ep, 180*time.Second, p)
			if r.rc != 0 {
				t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
			}
			if strings.Contains(r.output, "WARNING") {
				t.Errorf("warnings:\n%s", r.output)
			}
			if got := ep.mediaType(t, stream); got != c.content {
				t.Errorf("content type %q, want %q", got, c.content)
			}
			got := kvsgoGet(t, ep, stream)
			checkAV(t, in, got, c.vdec, c.adec)
			info, err := exec.Command("mkvinfo", got).Output()
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, l := range strings.Split(string(info), "\n") {
				if i := strings.Index(l, "Codec ID: "); i >= 0 {
					ids = append(ids, strings.TrimSpace(l[i+len("Codec ID: "):]))
				}
			}
			if strings.Join(ids, ",") != c.codecs {
				t.Errorf("codec ids %q, want %s", ids, c.codecs)
			}
			for _, want := range []string{"Track number: 1", "Name: kinesis_video", "Track number: 2", "Name: audio"} {
				if !strings.Contains(string(info), want) {
					t.Errorf("mkvinfo has no %q:\n%s", want, info)
				}
			}
		})
	}
}

// avDecodedHash is decodedHash for Matroska or MP4 files.
func avDecodedHash(t *testing.T, path, decoder, kind string) string {
	t.Helper()
	if !strings.HasSuffix(path, ".mp4") {
		return decodedHash(t, path, decoder, kind)
	}
	raw := filepath.Join(t.TempDir(), "raw")
	parse := map[string]string{"avdec_h264": "h264parse ! ", "avdec_h265": "h265parse ! ", "avdec_aac": "aacparse ! "}[decoder]
	conv := "videoconvert ! video/x-raw,format=I420"
	pad := "d.video_0"
	if kind == "a" {
		conv, pad = "audioconvert ! audio/x-raw,format=S16LE", "d.audio_0"
	}
	p := "filesrc location=" + path + " ! qtdemux name=d " + pad + " ! " + parse + decoder + " ! " + conv + " ! filesink location=" + raw
	if r := launch(t, nil, 60*time.Second, p); r.rc != 0 {
		t.Fatalf("decoding %s: %s", path, r.output)
	}
	b, err := os.ReadFile(raw)
	if err != nil || len(b) == 0 {
		t.Fatalf("decoding %s gave no samples: %v", path, err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// The official file upload: an MP4 with both tracks through qtdemux, as the
// official documentation writes it, offline.
func TestAVQtdemuxFileUpload(t *testing.T) {
	in := avInput(t, h264Branch, voaacBranch, "mp4mux")
	ep := startEndpoint(t)
	const stream = "av-mp4-upload"
	r := launch(t, ep, 180*time.Second, "filesrc location="+in+" ! qtdemux name=demux demux. ! queue ! h264parse ! "+
		kvssink(stream, "name=sink", "streaming-type=offline")+" demux. ! queue ! aacparse ! sink.")
	if r.rc != 0 || strings.Contains(r.output, "WARNING") {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	checkAV(t, in, kvsgoGet(t, ep, stream), "avdec_h264", "avdec_aac")
}

// Encoders straight into kvssink, as the official README's A/V pipelines:
// non-live and live sources. Every encoded packet of both tracks arrives
// and both decode.
func TestAVEncodeStraightIntoKvssink(t *testing.T) {
	for _, live := range []bool{false, true} {
		t.Run(fmt.Sprintf("live=%v", live), func(t *testing.T) {
			video, audio := h264Branch, voaacBranch
			if live {
				video = strings.Replace(strings.Replace(video, "videotestsrc", "videotestsrc is-live=true", 1), "x264enc", "x264enc tune=zerolatency", 1)
				audio = strings.Replace(audio, "audiotestsrc", "audiotestsrc is-live=true", 1)
			}
			ref := avInput(t, h264Branch, voaacBranch, "matroskamux") // the packet counts to expect
			ep := startEndpoint(t)
			stream := fmt.Sprintf("av-straight-live-%v", live)
			r := launch(t, ep, 120*time.Second, video+" ! "+kvssink(stream, "name=sink")+" "+audio+" ! sink.")
			if r.rc != 0 || strings.Contains(r.output, "WARNING") {
				t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
			}
			got := kvsgoGet(t, ep, stream)
			independentTools(t, got, "v")
			independentTools(t, got, "a")
			// Every video packet; every audio packet but, with live
			// sources, one that starts a moment before the first key
			// frame (a fragment starts at a video key frame).
			if n, m := packets(t, ref, "v"), packets(t, got, "v"); n != m {
				t.Fatalf("video: %d packets, the same branch gives %d", m, n)
			}
			slack := 0
			if live {
				slack = 1
			}
			if n, m := packets(t, ref, "a"), packets(t, got, "a"); m > n || m < n-slack {
				t.Fatalf("audio: %d packets, the same branch gives %d", m, n)
			}
			if n := demuxDecode(t, got, "h264"); n != 90 {
				t.Fatalf("matroskademux decoded %d video frames, want 90", n)
			}
			off := firstPTS(t, got, "a") - firstPTS(t, got, "v")
			if math.Abs(off) > 1.0/30 {
				t.Fatalf("A/V offset %.4f s: both sources start together", off)
			}
			t.Logf("%d video and %d audio packets, A/V offset %.4f s", packets(t, got, "v"), packets(t, got, "a"), off)
		})
	}
}

// Audio alone, on the always sink pad or on a requested audio pad (which
// then is the sink pad's ghost, so the element prerolls as usual): one
// track named "audio", content type audio/aac, and fragments cut by
// duration (key-frame fragmentation is off for audio only, as in the
// official element).
func TestAVAudioOnly(t *testing.T) {
	const branch = "audiotestsrc num-buffers=216 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse" // 5 s
	for _, c := range []struct{ name, pipeline string }{
		{"sink pad", branch + " ! " + kvssink("audio-only-sink")},
		{"audio_0", kvssink("audio-only-request", "name=s") + " " + branch + " ! s.audio_0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ep := startEndpoint(t)
			stream := strings.Fields(c.pipeline[strings.Index(c.pipeline, "stream-name="):])[0][len("stream-name="):]
			r := launch(t, ep, 120*time.Second, c.pipeline)
			if r.rc != 0 || strings.Contains(r.output, "WARNING") {
				t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
			}
			if got := ep.mediaType(t, stream); got != "audio/aac" {
				t.Errorf("content type %q, want audio/aac", got)
			}
			got := ep.capture(t, stream, 1)[0]
			independentTools(t, got, "a")
			info, err := exec.Command("mkvinfo", "-v", got).Output()
			if err != nil {
				t.Fatal(err)
			}
			if clusters := strings.Count(string(info), "|+ Cluster\n"); clusters != 3 {
				t.Errorf("%d fragments of 5 s of audio, want 3 (cut every 2 s)", clusters)
			}
			if strings.Count(string(info), "+ Track number") != 1 || !strings.Contains(string(info), "Name: audio") || !strings.Contains(string(info), "Codec ID: A_AAC") {
				t.Errorf("want one track \"audio\" A_AAC:\n%s", info)
			}
			if n := packets(t, got, "a"); n < 210 {
				t.Errorf("%d audio packets", n)
			}
		})
	}
}

// A second video input is refused, naming the pad; the element never
// streams two video tracks.
func TestAVSecondVideoPadRefused(t *testing.T) {
	ep := startEndpoint(t)
	v := "videotestsrc num-buffers=30 ! x264enc ! h264parse"
	for _, p := range []string{
		v + " ! " + kvssink("two-video", "name=s") + " " + v + " ! s.",
		kvssink("two-video", "name=s") + " " + v + " ! s.video_0 " + v + " ! s.video_1",
	} {
		r := launch(t, ep, 60*time.Second, p, "GST_DEBUG=kvssink:2")
		if r.rc == 0 {
			t.Fatalf("two video inputs ran:\n%s", r.output)
		}
		if !strings.Contains(r.output, "could not link") {
			t.Errorf("no link failure reported:\n%s", r.output)
		}
		if !strings.Contains(r.output, "one video track") {
			t.Errorf("the reason was not logged:\n%s", r.output)
		}
	}
}

// End-to-end encryption of an audio and video stream: three tracks (video
// 1, audio 2, the key track 3), no frame in clear at the endpoint, and
// kvsdecrypt, like kvsgo get -key, gives back both tracks decoding exactly
// like the input and like the plain run.
func TestAVE2EE(t *testing.T) {
	dir := t.TempDir()
	keys := keyFiles(t, dir)
	in := avInput(t, h264Branch, voaacBranch, "matroskamux")
	ep := startEndpoint(t)
	demux := "filesrc location=" + in + " ! matroskademux name=d d.video_0 ! queue ! h264parse ! "
	for _, stream := range []string{"av-e2ee", "av-plain"} {
		props := []string{"name=sink"}
		if stream == "av-e2ee" {
			props = append(props, "e2ee-recipients="+keys["alice.pub"], "e2ee-signing-key="+keys["cam"])
		}
		r := launch(t, ep, 180*time.Second, demux+kvssink(stream, props...)+" d.audio_0 ! queue ! aacparse ! sink.")
		if r.rc != 0 || strings.Contains(r.output, "WARNING") {
			t.Fatalf("%s: gst-launch exited %d:\n%s", stream, r.rc, r.output)
		}
	}
	enc := ep.getMedia(t, "av-e2ee")
	info, err := exec.Command("mkvinfo", enc).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Track number: 1", "Codec ID: V_MPEG4/ISO/AVC", "Track number: 2", "Codec ID: A_AAC", "Track number: 3", "Codec ID: S_KVSE2EE/KEYBUNDLE/V1"} {
		if !strings.Contains(string(info), want) {
			t.Fatalf("the encrypted stream has no %q:\n%s", want, info)
		}
	}
	stored, err := os.ReadFile(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range framePayloads(t, in) {
		for off := 0; off+16 <= len(p); off += 32 {
			if bytes.Contains(stored, p[off:off+16]) {
				t.Fatalf("bytes %d..%d of input frame %d appear in clear at the endpoint", off, off+16, i)
			}
		}
	}
	dec := filepath.Join(dir, "dec.mkv")
	r := launch(t, nil, 60*time.Second, "filesrc location="+enc+" ! kvsdecrypt private-keys="+keys["alice"]+" device-keys="+keys["cam.pub"]+" stream-name=av-e2ee ! filesink location="+dec)
	if r.rc != 0 || strings.Contains(r.output, "WARNING") {
		t.Fatalf("kvsdecrypt exited %d:\n%s", r.rc, r.output)
	}
	plain := kvsgoGet(t, ep, "av-plain")
	viaGet := kvsgoGet(t, ep, "av-e2ee", "-key", keys["alice"], "-device", keys["cam.pub"])
	// The decrypted frames are the plain run's, track by track, in order.
	want := framePayloads(t, plain)
	for name, path := range map[string]string{"kvsdecrypt": dec, "kvsgo get -key": viaGet} {
		got := framePayloads(t, path)
		if len(got) != len(want) {
			t.Fatalf("%s: %d frames, the plain run %d", name, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s: frame %d differs from the plain run's", name, i)
			}
		}
	}
	// kvsdecrypt keeps GetMedia's segment per fragment, where an AAC
	// decoder restarts; the joined files decode like the input.
	for _, c := range []struct{ dec, kind string }{{"avdec_h264", "v"}, {"avdec_aac", "a"}} {
		want := avDecodedHash(t, in, c.dec, c.kind)
		for name, path := range map[string]string{"plain run": plain, "kvsgo get -key": viaGet} {
			if got := avDecodedHash(t, path, c.dec, c.kind); got != want {
				t.Fatalf("%s: %s decodes to %s, the input to %s", name, c.dec, got, want)
			}
			if n, m := packets(t, in, c.kind), packets(t, path, c.kind); n != m {
				t.Fatalf("%s: %d %s packets, the input has %d", name, m, c.kind, n)
			}
		}
	}
	if n := demuxDecode(t, dec, "h264"); n != 90 {
		t.Fatalf("kvsdecrypt output: matroskademux decoded %d video frames, want 90", n)
	}
}

// PAUSED/PLAYING/READY/NULL loops never deadlock an audio and video
// kvssink, however its pads are linked, nor an audio-only one on a
// requested pad (GstBaseSink's own pad through a ghost).
func TestAVStateChangesDoNotDeadlock(t *testing.T) {
	host := testenv.BuildGstHost(t, stateHost)
	plugin := testenv.PluginDir(t)
	video := "videotestsrc is-live=true pattern=snow ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency key-int-max=10 speed-preset=ultrafast ! h264parse"
	audio := "audiotestsrc is-live=true ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse"
	for _, c := range []struct{ name, pipeline string }{
		{"sink.", video + " ! " + kvssink("states-av", "name=s") + " " + audio + " ! s."},
		{"named", kvssink("states-av-named", "name=s") + " " + audio + " ! s.audio_0 " + video + " ! s.video_0"},
		{"audio_0 alone", kvssink("states-audio", "name=s") + " " + audio + " ! s.audio_0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ep := startEndpoint(t)
			cmd := exec.Command(host, c.pipeline, "10")
			cmd.Env = gstEnv(plugin, ep)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "done 10 rounds") || strings.Contains(string(out), "CRITICAL") {
				t.Fatalf("%v:\n%s", err, tail(out))
			}
		})
	}
}

// avHost prerolls a pipeline, plays it, then either seeks (flushing) and
// waits for the end of stream, or, with "null", sets NULL while kvssink
// holds the first pad's end of stream for the second's.
const avHost = `
#include <gst/gst.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static int wait_state(GstElement *p, const char *what) {
  if (gst_element_get_state(p, NULL, NULL, 30 * GST_SECOND) == GST_STATE_CHANGE_ASYNC) { printf("DEADLOCK %s\n", what); return 1; }
  return 0;
}
int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  alarm(120);
  GError *err = NULL;
  GstElement *p = gst_parse_launch(argv[1], &err);
  if (!p) { printf("parse: %s\n", err->message); return 2; }
  gst_element_set_state(p, GST_STATE_PAUSED);
  if (wait_state(p, "prerolling")) return 1;
  printf("prerolled\n");
  gst_element_set_state(p, GST_STATE_PLAYING);
  if (wait_state(p, "playing")) return 1;
  g_usleep(strcmp(argv[2], "null") == 0 ? 2000000 : 300000);
  if (strcmp(argv[2], "null") == 0) {
    gint64 t0 = g_get_monotonic_time();
    gst_element_set_state(p, GST_STATE_NULL);
    printf("null after %" G_GINT64_FORMAT " ms\n", (g_get_monotonic_time() - t0) / 1000);
    return 0;
  }
  if (!gst_element_seek_simple(p, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT, 0)) { printf("seek refused\n"); return 1; }
  if (wait_state(p, "after the seek")) return 1;
  printf("seeked\n");
  GstMessage *m = gst_bus_timed_pop_filtered(gst_element_get_bus(p), 60 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  if (!m) { printf("no EOS\n"); return 1; }
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) { GError *e; gst_message_parse_error(m, &e, NULL); printf("error: %s\n", e->message); return 1; }
  printf("eos\n");
  gst_element_set_state(p, GST_STATE_NULL);
  return 0;
}
`

// A flushing seek reaches both branches and the stream still ends; NULL
// while the video's end of stream waits for a live audio track returns at
// once.
func TestAVSeekAndNullWhileEOSHeld(t *testing.T) {
	host := testenv.BuildGstHost(t, avHost)
	plugin := testenv.PluginDir(t)
	in := avInput(t, h264Branch, voaacBranch, "matroskamux")
	ep := startEndpoint(t)
	run := func(pipeline, mode string) string {
		cmd := exec.Command(host, pipeline, mode)
		cmd.Env = gstEnv(plugin, ep)
		out, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(out), "CRITICAL") {
			t.Fatalf("%v:\n%s", err, tail(out))
		}
		return string(out)
	}
	out := run("filesrc location="+in+" ! matroskademux name=d d.video_0 ! queue ! h264parse ! "+kvssink("av-seek", "name=s")+" d.audio_0 ! queue ! aacparse ! s.", "seek")
	if !strings.Contains(out, "seeked") || !strings.Contains(out, "eos") {
		t.Fatalf("seek: %s", out)
	}
	out = run("videotestsrc num-buffers=15 ! video/x-raw,framerate=30/1 ! x264enc key-int-max=15 ! h264parse ! "+kvssink("av-null-held", "name=s")+
		" audiotestsrc is-live=true ! voaacenc ! aacparse ! s.", "null")
	var ms int
	i := strings.Index(out, "null after")
	if i < 0 {
		t.Fatalf("NULL while the EOS was held: %s", out)
	}
	if _, err := fmt.Sscanf(out[i:], "null after %d ms", &ms); err != nil || ms > 10000 {
		t.Fatalf("NULL while the EOS was held: %s", out)
	}
	t.Logf("NULL while the video's end of stream was held took %d ms", ms)
}

// lateHost requests and links an audio pad the wrong ways: while the
// element streams (refused), and requested before the start but linked
// after it (an error naming the pad once data arrives).
const lateHost = `
#include <gst/gst.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static void dump(GstBus *bus) {
  GstMessage *m;
  while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR | GST_MESSAGE_WARNING))) {
    GError *e = NULL;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) gst_message_parse_error(m, &e, NULL);
    else gst_message_parse_warning(m, &e, NULL);
    printf("%s: %s\n", GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR ? "error" : "warning", e->message);
    g_error_free(e);
    gst_message_unref(m);
  }
}
int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  alarm(60);
  GError *err = NULL;
  GstElement *p = gst_parse_launch(argv[1], &err);
  if (!p) { printf("parse: %s\n", err->message); return 2; }
  GstElement *s = gst_bin_get_by_name(GST_BIN(p), "s");
  GstBus *bus = gst_element_get_bus(p);
  GstPad *early = NULL;
  if (strcmp(argv[2], "early") == 0) early = gst_element_request_pad_simple(s, "audio_%u");
  gst_element_set_state(p, GST_STATE_PLAYING);
  gst_element_get_state(p, NULL, NULL, 30 * GST_SECOND);
  g_usleep(300000);
  if (!early) {
    GstPad *late = gst_element_request_pad_simple(s, "audio_%u");
    printf("late request: %s\n", late ? "granted" : "refused");
  } else {
    GstElement *a = gst_parse_bin_from_description("audiotestsrc num-buffers=20 ! voaacenc ! aacparse", TRUE, &err);
    gst_bin_add(GST_BIN(p), a);
    GstPad *src = gst_element_get_static_pad(a, "src");
    printf("link: %d\n", gst_pad_link(src, early));
    gst_element_sync_state_with_parent(a);
    g_usleep(1000000);
  }
  dump(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  printf("done\n");
  return 0;
}
`

// A pad requested while streaming is refused, and one requested before
// the start but linked after it is an error once data arrives: both name
// the pad. The element never mixes a track into a stream started without
// it.
func TestAVPadLinkedAfterStart(t *testing.T) {
	host := testenv.BuildGstHost(t, lateHost)
	plugin := testenv.PluginDir(t)
	ep := startEndpoint(t)
	video := "videotestsrc is-live=true ! video/x-raw,framerate=30/1 ! x264enc tune=zerolatency key-int-max=30 ! h264parse ! "
	for _, c := range []struct{ mode, want string }{
		{"late", "late request: refused"},
		{"early", "Pad audio_0 was linked after kvssink started"},
	} {
		cmd := exec.Command(host, video+kvssink("av-late-"+c.mode, "name=s"), c.mode)
		cmd.Env = gstEnv(plugin, ep)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "done") || strings.Contains(string(out), "CRITICAL") {
			t.Fatalf("%s: %v:\n%s", c.mode, err, tail(out))
		}
		if !strings.Contains(string(out), c.want) {
			t.Fatalf("%s: no %q:\n%s", c.mode, c.want, out)
		}
		if c.mode == "late" && !strings.Contains(string(out), "warning: Cannot add pad audio_0 while streaming") {
			t.Fatalf("late: no warning naming the pad:\n%s", out)
		}
	}
}

// The video ends after 1 s, the audio goes on for 4 s: the end of stream
// is posted once both ended, and every frame of both is served.
func TestAVVideoEndsFirst(t *testing.T) {
	video := "videotestsrc num-buffers=30 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 bframes=0 ! h264parse"
	audio := "audiotestsrc num-buffers=172 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse"
	in := avInput(t, video, audio, "matroskamux")
	ep := startEndpoint(t)
	r := launch(t, ep, 120*time.Second, "filesrc location="+in+" ! matroskademux name=d d.video_0 ! queue ! h264parse ! "+
		kvssink("av-video-first", "name=s")+" d.audio_0 ! queue ! aacparse ! s.")
	if r.rc != 0 || strings.Contains(r.output, "WARNING") {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	checkAV(t, in, kvsgoGet(t, ep, "av-video-first"), "avdec_h264", "avdec_aac")
}

// An audio pad that is linked but never fed does not hold the stream: after
// the stall time a warning names the pad and its track, the video goes on
// alone, and the end of stream does not wait for the silent pad.
func TestAVNeverFedPad(t *testing.T) {
	ep := startEndpoint(t)
	r := launch(t, ep, 60*time.Second, "videotestsrc num-buffers=150 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 bframes=0 ! h264parse ! "+
		kvssink("av-never-fed", "name=s")+" appsrc ! aacparse ! s.")
	if r.rc != 0 {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	if !strings.Contains(r.output, "pad audio_0: the audio track stalled") {
		t.Fatalf("no warning naming the silent pad:\n%s", r.output)
	}
	got := kvsgoGet(t, ep, "av-never-fed")
	if n := packets(t, got, "v"); n != 150 || streamCodecs(t, got) != "h264" {
		t.Fatalf("%d video packets in streams %s, want 150 video only", n, streamCodecs(t, got))
	}
}

// The official pipeline with x264enc's defaults (a key frame every 10 s,
// B-frames): every fragment is accepted (none longer than 10 s, 4002) and
// every packet served.
func TestAVX264Defaults(t *testing.T) {
	video := "videotestsrc num-buffers=900 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc ! h264parse"
	audio := "audiotestsrc num-buffers=1300 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse"
	ref := avInput(t, video, audio, "matroskamux")
	ep := startEndpoint(t)
	r := launch(t, ep, 180*time.Second, video+" ! "+kvssink("av-x264-defaults", "name=sink")+" "+audio+" ! sink.")
	if r.rc != 0 || strings.Contains(r.output, "WARNING") {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	got := kvsgoGet(t, ep, "av-x264-defaults")
	for _, kind := range []string{"v", "a"} {
		if n, m := packets(t, ref, kind), packets(t, got, kind); n != m {
			t.Fatalf("%s: %d packets served, the same branch gives %d", kind, m, n)
		}
	}
}
