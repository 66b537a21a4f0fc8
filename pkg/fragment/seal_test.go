package fragment

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// xorSealer is a stand-in for the e2ee sealer: it prefixes each frame with
// its track, key flag and timecode and XORs the payload, so a test can see
// exactly what it was given.
type xorSealer struct {
	starts []uint64
	fail   bool
}

func (s *xorSealer) StartFragment(tc uint64) ([]byte, error) {
	s.starts = append(s.starts, tc)
	return []byte{'K', byte(len(s.starts))}, nil
}

func (s *xorSealer) AppendSealed(dst []byte, track uint64, key bool, tc uint64, pt []byte) ([]byte, error) {
	if s.fail {
		return append(dst, "garbage"...), errors.New("counter exhausted")
	}
	k := byte(0)
	if key {
		k = 1
	}
	dst = append(dst, byte(track), k, byte(tc>>8), byte(tc))
	for _, b := range pt {
		dst = append(dst, b^0x5a)
	}
	return dst, nil
}

func TestSealerStartsEveryFragmentWithTheKeyBlock(t *testing.T) {
	s := &xorSealer{}
	b, err := NewBuilder(Config{KeyFrameFragmentation: true, Sealer: s, KeyTrack: 2})
	if err != nil {
		t.Fatal(err)
	}
	hdr := mkv.AppendHeader(nil, &mkv.Header{Tracks: []mkv.Track{
		{Number: 1, UID: 1, Type: mkv.TrackTypeVideo, CodecID: "V_MPEG4/ISO/AVC", PixelWidth: 16, PixelHeight: 16},
		{Number: 2, UID: 2, Type: mkv.TrackTypeSubtitle, Name: "keys", CodecID: "S_KVSE2EE/KEYBUNDLE/V1", NotDefault: true}}})
	stream := append([]byte(nil), hdr...)
	var frags []*Fragment
	for i, st := range gop(1000, 60, 33, 30) {
		payload := bytes.Repeat([]byte{byte(i)}, 100+i*300) // some over 127 bytes, some over 16 KiB
		cur, closed, err := b.Add(Frame{PTS: st.pts, Keyframe: st.key, Data: payload})
		if err != nil {
			t.Fatal(err)
		}
		if closed != nil {
			frags = append(frags, closed)
		}
		_ = cur
	}
	frags = append(frags, b.Flush())
	for _, f := range frags {
		stream = append(stream, f.Data...)
	}
	if len(frags) != 2 || len(s.starts) != 2 || s.starts[0] != frags[0].Timecode || s.starts[1] != frags[1].Timecode {
		t.Fatalf("StartFragment timecodes %v for fragments at %d, %d", s.starts, frags[0].Timecode, frags[len(frags)-1].Timecode)
	}

	r := mkv.NewReader(bytes.NewReader(stream))
	var cluster uint64
	blocks, frame := 0, 0
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
			if tr := ev.Header.Tracks; len(tr) != 2 || !tr[1].NotDefault || tr[0].NotDefault || tr[1].Type != mkv.TrackTypeSubtitle {
				t.Fatalf("tracks %+v", tr)
			}
		case mkv.EventClusterStart:
			cluster, blocks = ev.Timecode, 0
		case mkv.EventBlock:
			blocks++
			bl := ev.Block
			if blocks == 1 {
				if bl.Track != 2 || bl.RelTimecode != 0 || !bl.Keyframe || string(bl.Data[:1]) != "K" {
					t.Fatalf("first block of cluster %d: %+v", cluster, bl)
				}
				continue
			}
			tc := cluster + uint64(bl.RelTimecode)
			want := bytes.Repeat([]byte{byte(frame) ^ 0x5a}, 100+frame*300)
			k := byte(0)
			if bl.Keyframe {
				k = 1
			}
			if bl.Track != 1 || !bytes.Equal(bl.Data[:4], []byte{1, k, byte(tc >> 8), byte(tc)}) || !bytes.Equal(bl.Data[4:], want) {
				t.Fatalf("frame %d at %d: sealed with %x, %d payload bytes", frame, tc, bl.Data[:4], len(bl.Data)-4)
			}
			frame++
		}
	}
	if frame != 60 {
		t.Fatalf("read %d frames, want 60", frame)
	}
}

func TestSealerErrorLeavesNoPartialBlock(t *testing.T) {
	s := &xorSealer{}
	b, err := NewBuilder(Config{KeyFrameFragmentation: true, Sealer: s, KeyTrack: 2})
	if err != nil {
		t.Fatal(err)
	}
	cur, _, err := b.Add(Frame{PTS: ms(1000), Keyframe: true, Data: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	n := len(cur.Data)
	s.fail = true
	if _, _, err := b.Add(Frame{PTS: ms(1033), Data: []byte{2}}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("counter exhausted")) {
		t.Fatalf("error %v", err)
	}
	if len(cur.Data) != n || cur.Frames != 1 {
		t.Fatalf("fragment grew to %d bytes, %d frames after a failed seal", len(cur.Data), cur.Frames)
	}
}

func TestSealerNeedsAKeyTrack(t *testing.T) {
	for _, kt := range []uint64{0, 1, 127} {
		if _, err := NewBuilder(Config{Sealer: &xorSealer{}, KeyTrack: kt}); err == nil {
			t.Errorf("key track %d accepted", kt)
		}
	}
}

// aeadSealer appends the way cipher.AEAD.Seal does: when dst lacks the
// room, it allocates exactly what it needs and copies dst there.
type aeadSealer struct{ reallocs int }

func (s *aeadSealer) StartFragment(uint64) ([]byte, error) { return []byte{'K'}, nil }

func (s *aeadSealer) AppendSealed(dst []byte, _ uint64, _ bool, _ uint64, pt []byte) ([]byte, error) {
	total := len(dst) + len(pt) + 24
	if cap(dst) < total {
		s.reallocs++
		grown := make([]byte, len(dst), total)
		copy(grown, dst)
		dst = grown
	}
	dst = append(dst, make([]byte, 8)...)
	dst = append(dst, pt...)
	return append(dst, make([]byte, 16)...), nil
}

// A fragment that outgrows its buffer grows as append grows, not by one
// exact reallocation (and a copy of the whole fragment) per sealed frame.
func TestSealedFragmentGrowsAmortized(t *testing.T) {
	s := &aeadSealer{}
	b, err := NewBuilder(Config{KeyFrameFragmentation: true, Sealer: s, KeyTrack: 2})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 30<<10)
	grows, last := 0, -1
	for i := range 300 { // one 9 MB fragment, far past its first 64 KiB buffer
		cur, _, err := b.Add(Frame{PTS: time.Duration(i) * 30 * time.Millisecond, Keyframe: i == 0, Data: frame})
		if err != nil {
			t.Fatal(err)
		}
		if c := cap(cur.Data); c != last {
			if last >= 0 {
				grows++
			}
			last = c
		}
	}
	if s.reallocs > 0 {
		t.Fatalf("the sealer had to reallocate the fragment %d times for 300 frames", s.reallocs)
	}
	// The builder's own growth must be amortized too: growing by what one
	// frame needs would change the capacity for nearly every frame.
	t.Logf("capacity changed %d times over 300 frames", grows)
	if grows >= 40 {
		t.Fatalf("the fragment's buffer grew %d times over 300 frames, want a logarithmic count", grows)
	}
	if got := b.Current().Frames; got != 300 {
		t.Fatalf("fragment holds %d frames, want 300", got)
	}
}
