package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// The real service's GetMedia response becomes one segment that starts at 0
// and that mkvmerge and ffprobe read whole.
func TestJoinRealGetMedia(t *testing.T) {
	fx := testenv.ReadFixture(t, "kvs-getmedia-real.mkv")
	var out bytes.Buffer
	st, err := join(&out, bytes.NewReader(fx))
	if err != nil {
		t.Fatal(err)
	}
	if st.segments != 5 || st.clusters != 5 || st.blocks != 300 {
		t.Fatalf("stats %+v", st)
	}
	r := mkv.NewReader(bytes.NewReader(out.Bytes()))
	segs, first := 0, true
	for {
		ev, err := r.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			segs++
		case mkv.EventClusterStart:
			if first && ev.Timecode != 0 {
				t.Fatalf("first cluster at %d, want 0", ev.Timecode)
			}
			first = false
		case mkv.EventTags:
			for _, tg := range ev.Tags {
				if strings.HasPrefix(tg.Name, "AWS_KINESISVIDEO_") {
					t.Fatalf("service tag %s kept", tg.Name)
				}
			}
		}
	}
	if segs != 1 {
		t.Fatalf("%d segments, want 1", segs)
	}
	path := filepath.Join(t.TempDir(), "joined.mkv")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mkvmerge := testenv.Tool(t, "mkvmerge", "mkvtoolnix")
	if b, err := exec.Command(mkvmerge, "-q", "-o", filepath.Join(t.TempDir(), "r.mkv"), path).CombinedOutput(); err != nil {
		t.Fatalf("mkvmerge: %v\n%s", err, b)
	}
	ffprobe := testenv.Tool(t, "ffprobe", "ffmpeg")
	b, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil || strings.TrimSpace(string(b)) != "300" {
		t.Fatalf("ffprobe: %q %v", b, err)
	}
}

func TestJoinRejectsGarbage(t *testing.T) {
	if _, err := join(io.Discard, strings.NewReader("not matroska at all")); err == nil {
		t.Fatal("garbage accepted")
	}
}

// FuzzJoin: no input makes the joiner panic, and whatever it writes has
// cluster timecodes that start after every frame before them.
func FuzzJoin(f *testing.F) {
	f.Add(fragments(1000, 2000, 3000))
	f.Add(fragments(1000, 2000, 2000))
	f.Add(fragments(1000, 2000, 1500))
	f.Add(fragments())
	f.Add(fragments(5)[:40])
	small := fragments(1000, 2000)
	f.Add(small[:len(small)-2])
	i := bytes.Index(small, []byte{0x15, 0x49, 0xa9, 0x66}) // Info
	f.Add(append(append(bytes.Clone(small[:i]), mkv.AppendTags(nil, []mkv.SimpleTag{{Name: "ENCODER", Value: "x"}})...), small[i:]...))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		st, err := join(&out, bytes.NewReader(in))
		if err != nil && out.Len() == 0 {
			return
		}
		r := mkv.NewReader(bytes.NewReader(out.Bytes()))
		var last int64 = -1
		var tc uint64
		clusters := 0
		for {
			ev, rerr := r.NextEvent()
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				if err == nil {
					t.Fatalf("output does not read back: %v", rerr)
				}
				return // an input error may cut the output anywhere
			}
			switch ev.Kind {
			case mkv.EventClusterStart:
				clusters++
				if int64(ev.Timecode) <= last {
					t.Fatalf("cluster at %d after a frame at %d", ev.Timecode, last)
				}
				tc = ev.Timecode
			case mkv.EventBlock:
				last = max(last, int64(tc)+int64(ev.Block.RelTimecode))
			}
		}
		if err == nil && clusters != st.clusters {
			t.Fatalf("%d clusters written, %d counted", clusters, st.clusters)
		}
	})
}

// An audio and video stream that goes on with one track (the other
// stalled or ended) joins into one segment; a fragment that brings a track
// the first header lacks, or changes one, does not.
func TestJoinTrackSubsets(t *testing.T) {
	video := mkv.Track{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: []byte{1, 2}, PixelWidth: 320, PixelHeight: 240}
	audio := mkv.Track{Number: 2, UID: 2, Type: mkv.TrackTypeAudio, CodecID: "A_AAC", CodecPrivate: []byte{0x11, 0x90}, SamplingFrequency: 48000, Channels: 2}
	segment := func(tc uint64, tracks ...mkv.Track) []byte {
		b := mkv.AppendHeader(nil, &mkv.Header{Tracks: tracks})
		b = mkv.AppendClusterStart(b, tc)
		for _, tr := range tracks {
			b = mkv.AppendSimpleBlock(b, tr.Number, 0, mkv.FlagKeyframe, []byte{byte(tr.Number)})
		}
		return b
	}
	var in []byte
	in = append(in, segment(1000, video, audio)...)
	in = append(in, segment(2000, video)...)
	in = append(in, segment(3000, audio)...)
	st, err := join(io.Discard, bytes.NewReader(in))
	if err != nil || st.segments != 3 || st.blocks != 4 {
		t.Fatalf("joining A/V, video, audio: %+v %v", st, err)
	}
	changed := audio
	changed.CodecPrivate = []byte{0x12, 0x10}
	for _, bad := range [][]byte{
		append(segment(1000, video), segment(2000, video, audio)...),
		append(segment(1000, video, audio), segment(2000, changed)...),
	} {
		if _, err := join(io.Discard, bytes.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "changes the tracks") {
			t.Fatalf("joined a fragment whose tracks are not in the first header: %v", err)
		}
	}
}
