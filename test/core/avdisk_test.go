package core

import (
	"context"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// Audio and video with storage-path: a producer gone mid-outage leaves both
// tracks' fragments on disk, and the next run uploads them first; the
// stream read back holds every video and audio frame once.
func TestAVDiskStoreRecovers(t *testing.T) {
	_, frames := officialFrames(t)
	cpd, _ := officialFrames(t)
	video := videoPuts(frames, 0)
	audio := audioFrames(0, video[len(video)-1].pts+aacFrame)
	puts := interleave(video, audio, 0)
	fe := newFaultEndpoint(t, kvslocal.Faults{})
	dir := t.TempDir()
	start := func(evs *avEvents) *sink.Sink {
		cfg := config(fe.url, "av-disk")
		cfg.AV, cfg.StoragePath, cfg.OnEvent = true, dir, evs.add
		s, err := sink.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.SetFormat(sink.Format{Codec: "h264", StreamFormat: "avc", CodecData: cpd}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetFormat(sink.Format{Codec: "aac", StreamFormat: "raw", CodecData: aacConfig, Rate: 48000, Channels: 2}); err != nil {
			t.Fatal(err)
		}
		return s
	}
	putAll := func(s *sink.Sink, ps []avPut) {
		for _, p := range ps {
			if err := s.Put(context.Background(), sink.Frame{Kind: p.kind, PTS: p.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: p.key, Data: p.data}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Run 1: the first third reaches the service, then the endpoint
	// refuses every connection, and the producer goes away.
	ev1 := &avEvents{}
	s1 := start(ev1)
	third := len(puts) / 3
	putAll(s1, puts[:third])
	// Every fragment closed so far is acknowledged before the outage, so
	// that none is stored by the endpoint with its acknowledgement lost
	// (that one would be resent after the restart, and held twice).
	closed := -1
	for _, p := range puts[:third] {
		if p.kind == sink.TrackVideo && p.key {
			closed++
		}
	}
	waitFor(t, func() bool { return s1.Metrics().FragmentsAcked >= uint64(closed) })
	fe.restart(0, kvslocal.Faults{Refuse: true})
	putAll(s1, puts[third:])
	s1.Close()
	fe.server().SetFaults(kvslocal.Faults{})

	// Run 2 recovers both tracks and ends the stream.
	ev2 := &avEvents{}
	s2 := start(ev2)
	defer s2.Close()
	rec := ev2.of(sink.EventRecovered)
	if len(rec) != 1 || rec[0].Recovered.Frames == 0 {
		t.Fatalf("recovery reports %v", rec)
	}
	if err := s2.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := avReadBack(t, fe.url, "av-disk")
	samePayloads(t, "video", got[1], payloads(video, sink.TrackVideo, 0))
	// Audio after the last video frame was still waiting to be interleaved
	// when the producer went: it had not reached a fragment, or the disk.
	var inFragments []avPut
	for _, a := range audio {
		if a.pts <= video[len(video)-1].pts {
			inFragments = append(inFragments, a)
		}
	}
	samePayloads(t, "audio", got[2], payloads(inFragments, sink.TrackAudio, 0))
}
