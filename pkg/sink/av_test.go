package sink

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// A realtime audio and video stream whose store overflows reports the
// dropped frames per track, and counts both tracks' frames in its metrics.
func TestAVDropsNameTheTracks(t *testing.T) {
	var mu sync.Mutex
	var evs []Event
	fc := clock.NewFake(time.Unix(1_800_000_000, 0))
	s, err := New(Config{StreamName: "s", Endpoint: "http://127.0.0.1:1", Region: "us-west-2", Credentials: nopCreds{},
		FrameTimecodes: true, AbsoluteFragmentTimes: true, KeyFrameFragmentation: true, FragmentAcks: true,
		StreamingType: Realtime, StorageSize: 40_000, BufferDuration: time.Hour, AV: true, Clock: fc,
		OnEvent: func(e Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	s.runCtx = context.Background()
	avcC := testenv.ReadFixture(t, "official-putmedia.mkv")[0xE9 : 0xE9+0x2C]
	if err := s.SetFormat(Format{Codec: "h264", StreamFormat: "avc", CodecData: avcC}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFormat(Format{Codec: "aac", StreamFormat: "raw", CodecData: []byte{0x11, 0x90}, Rate: 48000, Channels: 2}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// 10 s: a video key frame every second among 100 ms video frames, and
	// two 50 ms audio frames per video frame.
	for i := range 100 {
		fc.Advance(100 * time.Millisecond)
		pts := time.Duration(i) * 100 * time.Millisecond
		if err := s.Put(ctx, Frame{Kind: TrackVideo, PTS: pts, DTS: NoTime, Duration: NoTime, Keyframe: i%10 == 0, Data: make([]byte, 1000)}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []time.Duration{pts, pts + 50*time.Millisecond} {
			if err := s.Put(ctx, Frame{Kind: TrackAudio, PTS: a, DTS: NoTime, Duration: NoTime, Keyframe: true, Data: make([]byte, 300)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var video, audio, frames int
	for _, e := range evs {
		if e.Kind == EventDropped {
			d := e.Dropped
			if d.Tracks() != "video,audio" || d.VideoFrames+d.AudioFrames != d.Frames || !strings.Contains(e.String(), "video") {
				t.Fatalf("drop report %+v (%s)", d, e)
			}
			video, audio, frames = video+d.VideoFrames, audio+d.AudioFrames, frames+d.Frames
		}
	}
	// Whole fragments go: 10 video and 20 audio frames each.
	if frames == 0 || video*2 != audio {
		t.Fatalf("dropped %d frames: video %d, audio %d", frames, video, audio)
	}
	m := s.Metrics()
	if m.FramesDropped != uint64(frames) || m.FramesPut < 250 {
		t.Fatalf("metrics %+v: both tracks' frames are counted", m)
	}
}
