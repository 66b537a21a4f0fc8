package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// TestSrcAudioVideo: a stream with a video and an audio track (sent with
// pkg/kvs's PutMedia, as kvssink does not yet mux both) plays back through
// kvssrc with both tracks decoding as the original file does.
func TestSrcAudioVideo(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "av.mkv")
	r := launch(t, nil, 60*time.Second, "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! queue ! mux. "+
		"audiotestsrc num-buffers=141 samplesperbuffer=1024 ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! queue ! mux. "+
		"matroskamux name=mux ! filesink location="+in)
	if r.rc != 0 {
		t.Fatalf("making the input: %s", r.output)
	}
	ep := startEndpoint(t)
	const stream = "src-av"
	putFile(t, ep, stream, producerLayout(t, in, filepath.Join(dir, "put.mkv")))

	decode := func(src, name string) (video []string, audio string) {
		v, a := filepath.Join(dir, name+".yuv"), filepath.Join(dir, name+".pcm")
		r := launch(t, ep, 120*time.Second, src+" ! matroskademux name=d d.video_0 ! queue ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw,format=I420 ! filesink location="+v+
			" d.audio_0 ! queue ! aacparse ! avdec_aac ! audioconvert ! audio/x-raw,format=S16LE ! filesink location="+a)
		if r.rc != 0 {
			t.Fatalf("decoding %s: %s", name, tail([]byte(r.output)))
		}
		b, err := os.ReadFile(a)
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: no audio decoded (%v)", name, err)
		}
		h := sha256.Sum256(b)
		return frameHashes(t, v), hex.EncodeToString(h[:])
	}
	wantV, wantA := decode("filesrc location="+in, "ref")
	gotV, gotA := decode("kvssrc stream-name="+stream+" start-selector=earliest idle-timeout=3", "src")
	sameFrames(t, gotV, wantV)
	if gotA != wantA {
		t.Errorf("the decoded audio differs from the original's")
	}
	if len(wantV) != 90 {
		t.Errorf("the reference has %d video frames, want 90", len(wantV))
	}

	// The same file uploaded by kvssink itself, both tracks into one
	// element, plays back through kvssrc as the original.
	const viaSink = "src-av-kvssink"
	r = launch(t, ep, 120*time.Second, "filesrc location="+in+" ! matroskademux name=d d.video_0 ! queue ! h264parse ! "+
		"kvssink name=s stream-name="+viaSink+" streaming-type=offline d.audio_0 ! queue ! aacparse ! s.")
	if r.rc != 0 {
		t.Fatalf("kvssink: %s", tail([]byte(r.output)))
	}
	gotV, gotA = decode("kvssrc stream-name="+viaSink+" start-selector=earliest idle-timeout=3", "via-sink")
	sameFrames(t, gotV, wantV)
	if gotA != wantA {
		t.Errorf("the audio uploaded by kvssink decodes differently from the original's")
	}
}

// producerLayout rewrites a Matroska file as kvssink lays a stream out:
// one segment of unknown size, a Cluster of unknown size at every video
// key frame, SimpleBlocks.
func producerLayout(t *testing.T, in, out string) string {
	t.Helper()
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := mkv.NewReader(f)
	var b []byte
	var video uint64
	var cluster uint64
	open := false
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", in, err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			h := &mkv.Header{TimecodeScale: ev.Header.TimecodeScale, MuxingApp: "test", WritingApp: "test"}
			for _, tr := range ev.Header.Tracks {
				tr.CodecID = strings.TrimRight(tr.CodecID, "\x00")
				if tr.Type == mkv.TrackTypeVideo {
					video = tr.Number
				}
				h.Tracks = append(h.Tracks, tr)
			}
			b = mkv.AppendHeader(b, h)
		case mkv.EventClusterStart:
			cluster = ev.Timecode
		case mkv.EventBlock:
			blk := ev.Block
			tc := int64(cluster) + int64(blk.RelTimecode)
			if blk.Track == video && blk.Keyframe || !open {
				if blk.Track != video && !open {
					continue // audio before the first key frame
				}
				b = mkv.AppendClusterStart(b, uint64(tc))
				cluster, open = uint64(tc), true
			}
			flags := byte(0)
			if blk.Keyframe {
				flags = 0x80
			}
			b = mkv.AppendSimpleBlock(b, blk.Track, int16(tc-int64(cluster)), flags, blk.Data)
		}
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// putFile sends a Matroska file as one PutMedia session (relative
// timecodes) and waits for every fragment to be persisted.
func putFile(t *testing.T, ep *endpoint, stream, path string) {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	creds := testCredentials()
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: ep.url, Region: "us-west-2", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.CreateStream(ctx, kvs.CreateStreamInput{Name: stream, RetentionHours: 2, MediaType: "video/h264,audio/aac"}); err != nil {
		t.Fatal(err)
	}
	dataEP, err := ctl.GetDataEndpoint(ctx, stream, "PUT_MEDIA")
	if err != nil {
		t.Fatal(err)
	}
	pm, err := kvs.OpenPutMedia(ctx, kvs.PutMediaConfig{Endpoint: dataEP, StreamName: stream, Region: "us-west-2", Credentials: creds,
		TimecodeType: kvs.Relative, AckRequired: true}, body[:min(len(body), 4096)])
	if err != nil {
		t.Fatal(err)
	}
	if len(body) > 4096 {
		if _, err := pm.Write(body[4096:]); err != nil {
			t.Fatal(err)
		}
	}
	if err := pm.CloseBody(); err != nil {
		t.Fatal(err)
	}
	persisted := 0
	for a := range pm.Acks() {
		if a.EventType == kvs.AckErrorEvent {
			t.Fatalf("ERROR ack %+v", a)
		}
		if a.EventType == kvs.AckPersisted {
			persisted++
		}
	}
	if err := pm.Err(); err != nil && !bytes.Contains([]byte(err.Error()), []byte("ended")) {
		t.Fatal(err)
	}
	if persisted == 0 {
		t.Fatal("no fragment persisted")
	}
}
