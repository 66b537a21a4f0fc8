package core

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// aacConfig is an AudioSpecificConfig: AAC-LC, 48 kHz, stereo.
var aacConfig = []byte{0x11, 0x90}

const aacFrame = 1024 * time.Second / 48000 // 21.333 ms

// avPut is one call on an audio and video core.
type avPut struct {
	kind sink.TrackKind
	pts  time.Duration
	key  bool
	data []byte
	end  bool // EndTrack instead of a frame
}

// audioFrames returns audio frames from..to, each a distinct payload.
func audioFrames(from, to time.Duration) []avPut {
	var out []avPut
	for pts := from; pts < to; pts += aacFrame {
		out = append(out, avPut{kind: sink.TrackAudio, pts: pts, key: true, data: []byte(fmt.Sprintf("aac@%d", pts))})
	}
	return out
}

// interleave merges video and audio puts the way two pads deliver them:
// audio runs lead ahead of the video.
func interleave(video, audio []avPut, lead time.Duration) []avPut {
	var out []avPut
	a := 0
	for _, v := range video {
		for a < len(audio) && (audio[a].end || audio[a].pts <= v.pts+lead) {
			out = append(out, audio[a])
			a++
		}
		out = append(out, v)
	}
	return append(out, audio[a:]...)
}

func videoPuts(frames []frame, offset time.Duration) []avPut {
	out := make([]avPut, len(frames))
	for i, f := range frames {
		out[i] = avPut{kind: sink.TrackVideo, pts: f.pts + offset, key: f.key, data: f.data}
	}
	return out
}

type avEvents struct {
	mu  sync.Mutex
	all []sink.Event
}

func (e *avEvents) add(ev sink.Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }
func (e *avEvents) of(k sink.EventKind) []sink.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []sink.Event
	for _, ev := range e.all {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// avStream streams puts through an audio and video core into the local
// endpoint and returns the events. Every fragment must be accepted.
func avStream(t *testing.T, url, name string, puts []avPut, mod func(*sink.Config)) *avEvents {
	t.Helper()
	evs := &avEvents{}
	cfg := config(url, name)
	cfg.AV = true
	cfg.OnEvent = evs.add
	if mod != nil {
		mod(&cfg)
	}
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cpd, _ := officialFrames(t)
	if err := s.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFormat(sink.Format{Codec: "aac", StreamFormat: "raw", CodecData: aacConfig, Rate: 48000, Channels: 2}); err != nil {
		t.Fatal(err)
	}
	for _, p := range puts {
		if p.end {
			if err := s.EndTrack(p.kind); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := s.Put(ctx, sink.Frame{Kind: p.kind, PTS: p.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: p.key, Data: p.data}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := evs.of(sink.EventStreamError); len(errs) > 0 {
		t.Fatalf("the endpoint rejected fragments: %v", errs)
	}
	return evs
}

// avReadBack reads the stream back and checks what any consumer relies on:
// every fragment starts with a key frame of its first track, holds every
// track its header declares, and its timecode is above every frame before
// it. It returns the payloads per track number and the headers' track
// lists.
func avReadBack(t *testing.T, url, name string) (map[uint64][][]byte, []string) {
	t.Helper()
	got := map[uint64][][]byte{}
	var layouts []string
	var declared []uint64
	var inFrag map[uint64]int
	var lastTC, clusterTC uint64
	haveLast, first := false, false
	check := func() {
		for _, n := range declared {
			if inFrag != nil && inFrag[n] == 0 {
				t.Errorf("fragment at %d has no frame of declared track %d", clusterTC, n)
			}
		}
	}
	eachEvent(t, url, name, func(ev mkv.Event) {
		switch ev.Kind {
		case mkv.EventSegmentStart:
			check()
			inFrag = nil
			declared = declared[:0]
			var names []string
			for _, tr := range ev.Header.Tracks {
				declared = append(declared, tr.Number)
				names = append(names, fmt.Sprintf("%d:%s:%s", tr.Number, tr.Name, tr.CodecID))
			}
			l := strings.Join(names, ",")
			if len(layouts) == 0 || layouts[len(layouts)-1] != l {
				layouts = append(layouts, l)
			}
		case mkv.EventClusterStart:
			check()
			inFrag = map[uint64]int{}
			if haveLast && ev.Timecode <= lastTC {
				t.Errorf("fragment timecode %d not above the previous frame timecode %d", ev.Timecode, lastTC)
			}
			clusterTC, first = ev.Timecode, true
		case mkv.EventBlock:
			b := ev.Block
			if first && (!b.Keyframe || b.Track != declared[0]) {
				t.Errorf("fragment at %d starts with track %d key=%v", clusterTC, b.Track, b.Keyframe)
			}
			first = false
			inFrag[b.Track]++
			tc := uint64(int64(clusterTC) + int64(b.RelTimecode))
			if tc > lastTC || !haveLast {
				lastTC, haveLast = tc, true
			}
			got[b.Track] = append(got[b.Track], append([]byte(nil), b.Data...))
		}
	})
	check()
	return got, layouts
}

func payloads(ps []avPut, kind sink.TrackKind, from time.Duration) [][]byte {
	var out [][]byte
	for _, p := range ps {
		if p.kind == kind && !p.end && p.pts >= from {
			out = append(out, p.data)
		}
	}
	return out
}

func samePayloads(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: read back %d frames, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: frame %d differs", what, i)
		}
	}
}

// Video and audio interleave by time into fragments that start at video key
// frames and hold both tracks: audio delivered ahead of the video, at equal
// timestamps, and audio that starts before the first key frame (dropped:
// a fragment starts at a key frame).
func TestAVInterleavesIntoAcceptedFragments(t *testing.T) {
	_, frames := officialFrames(t)
	for _, c := range []struct {
		name       string
		videoStart time.Duration
		lead       time.Duration
	}{
		{"audio ahead", 0, 400 * time.Millisecond},
		{"video ahead", 0, -300 * time.Millisecond},
		{"audio before the first key frame", 500 * time.Millisecond, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, url := startEndpoint(t)
			name := "av-" + strings.ReplaceAll(c.name, " ", "-")
			video := videoPuts(frames, c.videoStart)
			audio := audioFrames(0, video[len(video)-1].pts+time.Second)
			puts := interleave(video, audio, c.lead)
			avStream(t, url, name, puts, nil)
			frags, err := srv.Fragments(name)
			if err != nil {
				t.Fatal(err)
			}
			if len(frags) != 10 {
				t.Errorf("%d fragments, want one per key frame (10)", len(frags))
			}
			got, layouts := avReadBack(t, url, name)
			if len(layouts) != 1 || layouts[0] != "1:kinesis_video:V_MPEG4/ISO/AVC,2:audio:A_AAC" {
				t.Errorf("headers declare %q, want video track 1 and audio track 2 throughout", layouts)
			}
			samePayloads(t, "video", got[1], payloads(video, sink.TrackVideo, 0))
			// Audio before the first key frame cannot be in a fragment; the
			// audio after the last video frame's fragment is still sent.
			samePayloads(t, "audio", got[2], payloads(audio, sink.TrackAudio, c.videoStart))
		})
	}
}

// One track ends while the other goes on: the rest is sent under a header
// that declares the remaining track only, so that no fragment lacks a
// declared track (4011). Both directions.
func TestAVOneTrackEndsTheOtherGoesOn(t *testing.T) {
	_, frames := officialFrames(t)
	t.Run("audio ends", func(t *testing.T) {
		_, url := startEndpoint(t)
		video := videoPuts(frames, 0)
		audio := append(audioFrames(0, 4*time.Second), avPut{kind: sink.TrackAudio, end: true})
		evs := avStream(t, url, "av-audio-ends", interleave(video, audio, 100*time.Millisecond), nil)
		got, layouts := avReadBack(t, url, "av-audio-ends")
		if len(layouts) != 2 || !strings.Contains(layouts[0], "A_AAC") || strings.Contains(layouts[1], "A_AAC") {
			t.Fatalf("layouts %q, want A/V then video only", layouts)
		}
		samePayloads(t, "video", got[1], payloads(video, sink.TrackVideo, 0))
		samePayloads(t, "audio", got[2], payloads(audio, sink.TrackAudio, 0))
		if n := evs.of(sink.EventTracks); len(n) != 1 || !strings.Contains(n[0].Message, "goes on with video from") {
			t.Errorf("no event said the stream went on with video only: %v", n)
		}
		if w := evs.of(sink.EventWarning); len(w) > 0 {
			t.Errorf("warnings for a track that ended normally: %v", w)
		}
	})
	t.Run("video ends", func(t *testing.T) {
		_, url := startEndpoint(t)
		// The audio goes on 7 s after the video's end: past the trail
		// limit, it goes on alone.
		video := append(videoPuts(frames[:150], 0), avPut{kind: sink.TrackVideo, end: true})
		audio := audioFrames(0, 12*time.Second)
		avStream(t, url, "av-video-ends", interleave(video, audio, 100*time.Millisecond), nil)
		got, layouts := avReadBack(t, url, "av-video-ends")
		if len(layouts) != 2 || !strings.HasPrefix(layouts[1], "2:audio:A_AAC") {
			t.Fatalf("layouts %q, want A/V then audio only", layouts)
		}
		samePayloads(t, "video", got[1], payloads(video, sink.TrackVideo, 0))
		samePayloads(t, "audio", got[2], payloads(audio, sink.TrackAudio, 0))
	})
}

// A live audio track stalls for 3 s while the video goes on: after the
// stall timeout a warning names the audio track, the video is sent alone,
// and the audio rejoins at the next key frame once it delivers again. A
// track that never delivers at all stalls the same way.
func TestAVStalledAndNeverFedTracks(t *testing.T) {
	_, frames := officialFrames(t)
	stallCfg := func(c *sink.Config) { c.StallTimeout = time.Second }
	t.Run("stall", func(t *testing.T) {
		_, url := startEndpoint(t)
		video := videoPuts(frames, 0)
		audio := append(audioFrames(0, 3*time.Second), audioFrames(6*time.Second, 10*time.Second)...)
		evs := avStream(t, url, "av-stall", interleave(video, audio, 50*time.Millisecond), stallCfg)
		stalled := false
		for _, w := range evs.of(sink.EventWarning) {
			if w.Track == sink.TrackAudio && strings.Contains(w.Message, "audio track stalled") {
				stalled = true
			}
		}
		if !stalled {
			t.Fatalf("no warning named the stalled audio track: %v", evs.of(sink.EventWarning))
		}
		got, layouts := avReadBack(t, url, "av-stall")
		if len(layouts) != 3 {
			t.Fatalf("layouts %q, want A/V, video only, A/V", layouts)
		}
		samePayloads(t, "video", got[1], payloads(video, sink.TrackVideo, 0))
		// The audio that resumes before the next key frame waits for it.
		if n := len(got[2]); n < len(payloads(audio, sink.TrackAudio, 0))-50 || n > len(payloads(audio, sink.TrackAudio, 0)) {
			t.Fatalf("read back %d audio frames of %d", n, len(payloads(audio, sink.TrackAudio, 0)))
		}
	})
	t.Run("never fed", func(t *testing.T) {
		_, url := startEndpoint(t)
		video := videoPuts(frames, 0)
		avStream(t, url, "av-never-fed", video, stallCfg)
		got, layouts := avReadBack(t, url, "av-never-fed")
		if len(layouts) != 1 || strings.Contains(layouts[0], "A_AAC") {
			t.Fatalf("layouts %q, want video only", layouts)
		}
		samePayloads(t, "video", got[1], payloads(video, sink.TrackVideo, 0))
	})
}

// Audio that goes on a little after the video's end of stream stays in the
// last fragment: no header change, no warning.
func TestAVShortTrailingAudioStaysInTheLastFragment(t *testing.T) {
	_, frames := officialFrames(t)
	_, url := startEndpoint(t)
	video := append(videoPuts(frames[:90], 0), avPut{kind: sink.TrackVideo, end: true})
	audio := audioFrames(0, 3100*time.Millisecond)
	evs := avStream(t, url, "av-trailing", interleave(video, audio, 0), nil)
	if w := append(evs.of(sink.EventWarning), evs.of(sink.EventTracks)...); len(w) > 0 {
		t.Fatalf("warnings or track changes: %v", w)
	}
	got, layouts := avReadBack(t, url, "av-trailing")
	if len(layouts) != 1 {
		t.Fatalf("layouts %q, want one", layouts)
	}
	samePayloads(t, "audio", got[2], payloads(audio, sink.TrackAudio, 0))
}

// Bad input on the audio track: buffers without timestamps, timestamps
// that go back or jump ahead, a format change mid-stream. Each gets a
// warning naming the audio track, and the endpoint accepts every fragment.
func TestAVBadAudioInput(t *testing.T) {
	_, frames := officialFrames(t)
	video := videoPuts(frames, 0)
	short := func(c *sink.Config) { c.StallTimeout = time.Second }
	cases := []struct {
		name  string
		audio []avPut
		want  string
	}{
		{"back 5 s", append(audioFrames(0, 5*time.Second), audioFrames(0, 10*time.Second)...), "goes back"},
		{"jump 30 s", append(audioFrames(0, 4*time.Second), audioFrames(34*time.Second, 35*time.Second)...), "stalled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, url := startEndpoint(t)
			name := "av-bad-" + strings.ReplaceAll(c.name, " ", "-")
			evs := avStream(t, url, name, interleave(video, c.audio, 100*time.Millisecond), short)
			found := false
			for _, w := range evs.of(sink.EventWarning) {
				if w.Track == sink.TrackAudio && strings.Contains(w.Message, c.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no warning about the audio track saying %q: %v", c.want, evs.of(sink.EventWarning))
			}
			got, _ := avReadBack(t, url, name)
			samePayloads(t, "video", got[1], payloads(video, sink.TrackVideo, 0))
		})
	}
	t.Run("untimed", func(t *testing.T) {
		_, url := startEndpoint(t)
		evs := &avEvents{}
		cfg := config(url, "av-bad-untimed")
		cfg.AV, cfg.OnEvent = true, evs.add
		s, err := sink.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx := context.Background()
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		cpd, _ := officialFrames(t)
		if err := s.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetFormat(sink.Format{Codec: "aac", StreamFormat: "raw", CodecData: aacConfig, Rate: 48000, Channels: 2}); err != nil {
			t.Fatal(err)
		}
		audio := 0
		for i, v := range video {
			if err := s.Put(ctx, sink.Frame{Kind: sink.TrackVideo, PTS: v.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: v.key, Data: v.data}); err != nil {
				t.Fatal(err)
			}
			// Audio without timestamps: with a duration it is timed from
			// the previous audio frame; without, it cannot be placed.
			d := time.Second / 30
			if i%10 == 5 {
				d = sink.NoTime
			}
			if err := s.Put(ctx, sink.Frame{Kind: sink.TrackAudio, PTS: sink.NoTime, DTS: sink.NoTime, Duration: d, Keyframe: true, Data: []byte{byte(i)}}); err != nil {
				t.Fatal(err)
			}
			audio++
			// A format change mid-stream: new AudioSpecificConfig.
			if i == 150 {
				if err := s.SetFormat(sink.Format{Codec: "aac", StreamFormat: "raw", CodecData: []byte{0x11, 0x88}, Rate: 48000, Channels: 1}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := s.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		if errs := evs.of(sink.EventStreamError); len(errs) > 0 {
			t.Fatalf("the endpoint rejected fragments: %v", errs)
		}
		var said []string
		for _, w := range evs.of(sink.EventWarning) {
			if w.Track == sink.TrackAudio {
				said = append(said, w.Message)
			}
		}
		all := strings.Join(said, "\n")
		for _, want := range []string{"without timestamps", "format changed"} {
			if !strings.Contains(all, want) {
				t.Errorf("no audio warning saying %q: %q", want, said)
			}
		}
		// The new format goes under a new header from the next fragment.
		var cpds []string
		eachEvent(t, url, "av-bad-untimed", func(ev mkv.Event) {
			if ev.Kind == mkv.EventSegmentStart {
				for _, tr := range ev.Header.Tracks {
					if c := fmt.Sprintf("%x", tr.CodecPrivate); tr.Number == 2 && (len(cpds) == 0 || cpds[len(cpds)-1] != c) {
						cpds = append(cpds, c)
					}
				}
			}
		})
		if strings.Join(cpds, ",") != "1190,1188" {
			t.Errorf("audio CodecPrivate in the headers: %q, want 1190 then 1188", cpds)
		}
	})
}

// x264enc's defaults: a key frame every 10 s exactly, B-frames (a DTS one
// frame before the PTS). The audio between a key frame's DTS and PTS must
// not stretch the next fragment past the service's 10 s (4002), nor start
// before its cluster.
func TestAVTenSecondGOPWithBFrames(t *testing.T) {
	_, frames := officialFrames(t)
	_, url := startEndpoint(t)
	const fd = time.Second / 30
	evs := &avEvents{}
	cfg := config(url, "av-gop10")
	cfg.AV, cfg.OnEvent = true, evs.add
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cpd, _ := officialFrames(t)
	if err := s.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFormat(sink.Format{Codec: "aac", StreamFormat: "raw", CodecData: aacConfig, Rate: 48000, Channels: 2}); err != nil {
		t.Fatal(err)
	}
	a := time.Duration(0)
	for i := range 1200 { // 40 s
		pts := time.Duration(i) * fd
		dts := pts - fd
		if i == 0 {
			dts = sink.NoTime
		}
		for ; a <= dts+fd/2; a += aacFrame {
			if err := s.Put(ctx, sink.Frame{Kind: sink.TrackAudio, PTS: a, DTS: sink.NoTime, Duration: aacFrame, Keyframe: true, Data: []byte("a")}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Put(ctx, sink.Frame{Kind: sink.TrackVideo, PTS: pts, DTS: dts, Duration: fd, Keyframe: i%300 == 0, Data: frames[i%300].data}); err != nil {
			t.Fatal(err)
		}
	}
	// The video ends; the audio goes on a little past its last frame and
	// then alone: its first fragment must still start after every frame
	// before it, B-frames included (4004, checked by avReadBack).
	if err := s.EndTrack(sink.TrackVideo); err != nil {
		t.Fatal(err)
	}
	for end := a + 300*time.Millisecond; a < end; a += aacFrame {
		if err := s.Put(ctx, sink.Frame{Kind: sink.TrackAudio, PTS: a, DTS: sink.NoTime, Duration: aacFrame, Keyframe: true, Data: []byte("a")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if errs := evs.of(sink.EventStreamError); len(errs) > 0 {
		t.Fatalf("the endpoint rejected fragments: %v", errs)
	}
	if _, layouts := avReadBack(t, url, "av-gop10"); len(layouts) != 2 {
		t.Fatalf("layouts %q, want A/V then audio alone", layouts)
	}
	var cluster uint64
	eachEvent(t, url, "av-gop10", func(ev mkv.Event) {
		switch ev.Kind {
		case mkv.EventClusterStart:
			cluster = ev.Timecode
		case mkv.EventBlock:
			if ev.Block.Track == 2 && ev.Block.RelTimecode < 0 {
				t.Errorf("an audio frame %d ms before its cluster at %d", -ev.Block.RelTimecode, cluster)
			}
		}
	})
}

// An encrypted audio and video stream whose audio ends mid-way: the
// headers change (A/V, then video alone), each signed into its epoch's
// bundles, and the recipient decrypts every frame of both tracks.
func TestAVE2EEAcrossAHeaderChange(t *testing.T) {
	_, frames := officialFrames(t)
	_, url := startEndpoint(t)
	k := newE2EEKeys(t)
	const name = "av-e2ee-change"
	video := videoPuts(frames, 0)
	audio := append(audioFrames(0, 4*time.Second), avPut{kind: sink.TrackAudio, end: true})
	avStream(t, url, name, interleave(video, audio, 100*time.Millisecond), func(c *sink.Config) {
		c.E2EE = &sink.E2EEConfig{Recipients: []*e2ee.PublicKey{k.alice.Public()}, SigningKey: k.device}
	})
	raw := getMediaRaw(t, url, name, kvs.StartSelector{Type: "EARLIEST"})
	got, rep, err := decryptFrames(t, raw, name, k.device.Public(), k.alice)
	if err != nil {
		t.Fatalf("%v (report %+v)", err, rep)
	}
	want := len(payloads(video, sink.TrackVideo, 0)) + len(payloads(audio, sink.TrackAudio, 0))
	if len(got) != want {
		t.Fatalf("decrypted %d frames, want %d (report %+v)", len(got), want, rep)
	}
	var all [][]byte
	for _, p := range interleave(video, audio, 100*time.Millisecond) {
		if !p.end {
			all = append(all, p.data)
		}
	}
	have := map[string]int{}
	for _, f := range got {
		have[string(f.data)]++
	}
	for _, d := range all {
		if have[string(d)] == 0 {
			t.Fatal("a frame was not decrypted")
		}
		have[string(d)]--
	}
}
