package mkvstream

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/mkv"
	"github.com/kvsgo/kvsgo/test/testenv"
)

var (
	keysOnce            sync.Once
	device, otherDevice *e2ee.SigningKey
	alice, bob          *e2ee.PrivateKey
)

func keys(t testing.TB) {
	keysOnce.Do(func() {
		device, _ = e2ee.GenerateSigningKey()
		otherDevice, _ = e2ee.GenerateSigningKey()
		alice, _ = e2ee.GenerateKey(e2ee.KEMX25519)
		bob, _ = e2ee.GenerateKey(e2ee.KEMXWing)
	})
	if device == nil || alice == nil || bob == nil {
		t.Fatal("key generation failed")
	}
}

func encrypt(t testing.TB, plain []byte, stream string, signer *e2ee.SigningKey) []byte {
	t.Helper()
	keys(t)
	enc, err := e2ee.NewEncryptor(e2ee.EncryptorConfig{Stream: stream, SigningKey: signer,
		Recipients: []*e2ee.PublicKey{alice.Public(), bob.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Encrypt(&out, bytes.NewReader(plain), enc); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func cfg(stream string, k *e2ee.PrivateKey) e2ee.DecryptorConfig {
	return e2ee.DecryptorConfig{Stream: stream, Devices: []*e2ee.DeviceKey{device.Public()}, Keys: []*e2ee.PrivateKey{k}}
}

type block struct {
	track    uint64
	tc       uint64
	keyframe bool
	data     []byte
}

// summary lists a stream's tracks, cluster timecodes and blocks.
func summary(t testing.TB, b []byte) (tracks []string, clusters []uint64, blocks []block) {
	t.Helper()
	rd := mkv.NewReader(bytes.NewReader(b))
	var tc uint64
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			tracks = tracks[:0]
			for _, tr := range ev.Header.Tracks {
				tracks = append(tracks, tr.CodecID)
			}
		case mkv.EventClusterStart:
			tc = ev.Timecode
			clusters = append(clusters, tc)
		case mkv.EventBlock:
			blocks = append(blocks, block{ev.Block.Track, pts(tc, ev.Block.RelTimecode), ev.Block.Keyframe, bytes.Clone(ev.Block.Data)})
		}
	}
}

func TestRoundTripFixtures(t *testing.T) {
	for _, name := range []string{"official-putmedia.mkv", "kvs-getmedia-real.mkv"} {
		t.Run(name, func(t *testing.T) {
			keys(t)
			plain := testenv.ReadFixture(t, name)
			encd := encrypt(t, plain, "cam-1", device)
			trE, clE, blE := summary(t, encd)
			trP, clP, blP := summary(t, plain)
			if !slices.Contains(trE, e2ee.KeyTrackCodecID) || !slices.Equal(clE, clP) || len(blE) != len(blP)+len(clP) {
				t.Fatalf("encrypted: tracks %v, %d clusters, %d blocks", trE, len(clE), len(blE))
			}
			for _, k := range []*e2ee.PrivateKey{alice, bob} {
				var out bytes.Buffer
				rep, err := Decrypt(&out, bytes.NewReader(encd), cfg("cam-1", k), Options{Strict: true})
				if err != nil {
					t.Fatal(err)
				}
				// The real response's producer tags are dropped, with a warning.
				tagsDropped := map[string]int{"official-putmedia.mkv": 0, "kvs-getmedia-real.mkv": 5}[name]
				if rep.Opened != len(blP) || rep.Dropped() != 0 || rep.BundlesAccepted != len(clP) || rep.Counts[ErrTagsDropped] != tagsDropped ||
					len(rep.Counts) != min(tagsDropped, 1) {
					t.Fatalf("report %+v", rep)
				}
				trD, clD, blD := summary(t, out.Bytes())
				if !slices.Equal(trD, trP) || !slices.Equal(clD, clP) || len(blD) != len(blP) {
					t.Fatalf("decrypted: tracks %v, %d clusters, %d blocks", trD, len(clD), len(blD))
				}
				for i := range blP {
					if blD[i].track != blP[i].track || blD[i].tc != blP[i].tc || blD[i].keyframe != blP[i].keyframe || !bytes.Equal(blD[i].data, blP[i].data) {
						t.Fatalf("block %d differs", i)
					}
				}
			}
		})
	}
}

// chunks splits an encrypted stream into pieces that each end with a
// Cluster's last block (segment heads and Tags go with the next Cluster),
// letting mutate change an event first (return false to drop it).
func chunks(t testing.TB, b []byte, mutate func(cluster, blk int, ev *mkv.Event) bool) [][]byte {
	t.Helper()
	rd := mkv.NewReader(bytes.NewReader(b))
	var out [][]byte
	var cur []byte
	cluster, blk := -1, 0
	inBlocks := false
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != mkv.EventBlock && inBlocks {
			out, cur, inBlocks = append(out, cur), nil, false
		}
		if ev.Kind == mkv.EventClusterStart {
			cluster, blk = cluster+1, 0
		}
		if ev.Kind == mkv.EventBlock {
			ev.Block.Data = bytes.Clone(ev.Block.Data)
			inBlocks = true
		}
		keep := mutate == nil || mutate(cluster, blk, &ev)
		if ev.Kind == mkv.EventBlock {
			blk++
		}
		if !keep {
			continue
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			cur = append(cur, ev.Header.Raw...)
		case mkv.EventTags:
			cur = append(cur, ev.TagsRaw...)
		case mkv.EventClusterStart:
			cur = mkv.AppendClusterStart(cur, ev.Timecode)
		case mkv.EventBlock:
			cur = mkv.AppendSimpleBlock(cur, ev.Block.Track, ev.Block.RelTimecode, ev.Block.Flags, ev.Block.Data)
		}
	}
	return append(out, cur)
}

func TestAttacksOnStreams(t *testing.T) {
	keys(t)
	plain := testenv.ReadFixture(t, "official-putmedia.mkv")
	encd := encrypt(t, plain, "cam-1", device)
	forged := encrypt(t, plain, "cam-1", otherDevice)
	otherStream := encrypt(t, plain, "cam-2", device)
	_, clusters, blocks := summary(t, plain)
	nFrames := len(blocks)
	perCluster := nFrames / len(clusters)
	run := func(t *testing.T, in []byte, stream string) (*Report, error) {
		t.Helper()
		rep, err := Decrypt(io.Discard, bytes.NewReader(in), cfg(stream, alice), Options{})
		return rep, err
	}
	join := func(cs [][]byte) []byte { return bytes.Join(cs, nil) }
	// only checks the counted causes; a dropped frame also shows as a gap
	// at the next frame that opens (the counter advances only on success).
	only := func(t *testing.T, rep *Report, cause error, n int, gaps ...int) {
		t.Helper()
		want := map[error]int{cause: n}
		if len(gaps) > 0 {
			want[e2ee.ErrGap] = gaps[0]
		}
		if len(rep.Counts) != len(want) {
			t.Fatalf("counts %v, want %v", rep.Counts, want)
		}
		for c, n := range want {
			if rep.Counts[c] != n {
				t.Fatalf("counts %v, want %v", rep.Counts, want)
			}
		}
	}

	t.Run("bit flip in a frame", func(t *testing.T) {
		rep, err := run(t, join(chunks(t, encd, func(c, b int, ev *mkv.Event) bool {
			if ev.Kind == mkv.EventBlock && c == 3 && b == 5 {
				ev.Block.Data[len(ev.Block.Data)/2] ^= 0x10
			}
			return true
		})), "cam-1")
		if err != nil {
			t.Fatal(err)
		}
		only(t, rep, e2ee.ErrAuth, 1, 1)
		if rep.Opened != nFrames-1 {
			t.Fatalf("opened %d", rep.Opened)
		}
	})
	t.Run("bit flip in a bundle", func(t *testing.T) {
		rep, _ := run(t, join(chunks(t, encd, func(c, b int, ev *mkv.Event) bool {
			if ev.Kind == mkv.EventBlock && c == 0 && b == 0 {
				ev.Block.Data[100] ^= 1
			}
			return true
		})), "cam-1")
		if rep.Counts[e2ee.ErrBundleSignature] != 1 || rep.Counts[e2ee.ErrMissingKey] != perCluster || rep.Opened != nFrames-perCluster {
			t.Fatalf("report %v opened %d", rep.Counts, rep.Opened)
		}
	})
	t.Run("duplicated frame", func(t *testing.T) {
		cs := chunks(t, encd, nil)
		var in []byte
		for i, c := range cs {
			in = append(in, c...)
			if i == 2 { // the cluster's 7th block again, as a block of cluster 2
				_, _, bl := summary(t, encd)
				var k int
				for j := range bl {
					if bl[j].track == 1 {
						k++
					}
					if k == 2*perCluster+7 {
						in = mkv.AppendSimpleBlock(in, bl[j].track, int16(bl[j].tc-clusters[2]), 0, bl[j].data)
						break
					}
				}
			}
		}
		rep, _ := run(t, in, "cam-1")
		only(t, rep, e2ee.ErrReplay, 1)
	})
	t.Run("swapped fragments", func(t *testing.T) {
		cs := chunks(t, encd, nil)
		cs[6], cs[7] = cs[7], cs[6]
		rep, _ := run(t, join(cs), "cam-1")
		only(t, rep, e2ee.ErrReplay, perCluster, 1) // cluster 7 first skips cluster 6
	})
	t.Run("withheld fragment", func(t *testing.T) {
		cs := chunks(t, encd, nil)
		rep, err := run(t, join(append(cs[:4:4], cs[5:]...)), "cam-1")
		if err != nil {
			t.Fatal(err)
		}
		only(t, rep, e2ee.ErrGap, 1)
		if len(rep.Gaps) != 1 || rep.Gaps[0].To-rep.Gaps[0].From+1 != uint64(perCluster) {
			t.Fatalf("gaps %+v", rep.Gaps)
		}
	})
	t.Run("late joiner", func(t *testing.T) {
		cs := chunks(t, encd, nil)
		head := chunks(t, encd, func(c, b int, ev *mkv.Event) bool { return ev.Kind == mkv.EventSegmentStart })[0]
		rep, err := run(t, append(bytes.Clone(head), join(cs[5:])...), "cam-1")
		if err != nil || rep.Opened != 5*perCluster || len(rep.Counts) != 0 {
			t.Fatalf("%v, report %+v", err, rep)
		}
	})
	t.Run("shifted cluster timecodes", func(t *testing.T) {
		_, err := run(t, join(chunks(t, encd, func(c, b int, ev *mkv.Event) bool {
			if ev.Kind == mkv.EventClusterStart {
				ev.Timecode++
			}
			return true
		})), "cam-1")
		if !errors.Is(err, ErrContextMismatch) {
			t.Fatalf("%v, want ErrContextMismatch", err)
		}
		// A live consumer learns it after MismatchAfter frames, having
		// read only the first clusters.
		shifted := join(chunks(t, encd, func(c, b int, ev *mkv.Event) bool {
			if ev.Kind == mkv.EventClusterStart {
				ev.Timecode++
			}
			return true
		}))
		rep, err := Decrypt(io.Discard, bytes.NewReader(shifted), cfg("cam-1", alice), Options{Live: true, MismatchAfter: 45})
		if !errors.Is(err, ErrContextMismatch) || rep.Frames != 45 || rep.Clusters != 2 {
			t.Fatalf("%v after %d frames in %d clusters, want ErrContextMismatch after 45 in 2", err, rep.Frames, rep.Clusters)
		}
	})
	t.Run("flipped keyframe flag", func(t *testing.T) {
		rep, _ := run(t, join(chunks(t, encd, func(c, b int, ev *mkv.Event) bool {
			if ev.Kind == mkv.EventBlock && c == 1 && b == 1 {
				ev.Block.Flags ^= 0x80
			}
			return true
		})), "cam-1")
		only(t, rep, e2ee.ErrAuth, 1, 1)
	})
	t.Run("fragment spliced from another stream", func(t *testing.T) {
		cs := chunks(t, encd, nil)
		cs[3] = chunks(t, otherStream, nil)[3]
		rep, _ := run(t, join(cs), "cam-1")
		if rep.Counts[e2ee.ErrWrongStream] != 1 || rep.Counts[e2ee.ErrMissingKey] != perCluster {
			t.Fatalf("counts %v", rep.Counts)
		}
	})
	t.Run("wrong stream", func(t *testing.T) {
		rep, err := run(t, encd, "cam-2")
		if !errors.Is(err, ErrNothingDecrypted) || rep.Counts[e2ee.ErrWrongStream] != len(clusters) {
			t.Fatalf("%v, counts %v", err, rep.Counts)
		}
	})
	t.Run("forged bundles from a non-device key", func(t *testing.T) {
		rep, err := run(t, forged, "cam-1")
		if !errors.Is(err, ErrNothingDecrypted) || !errors.Is(err, e2ee.ErrBundleSignature) || rep.Counts[e2ee.ErrBundleSignature] != len(clusters) {
			t.Fatalf("%v, counts %v", err, rep.Counts)
		}
	})
	t.Run("not encrypted", func(t *testing.T) {
		if _, err := run(t, plain, "cam-1"); !errors.Is(err, ErrNotEncrypted) {
			t.Fatalf("%v, want ErrNotEncrypted", err)
		}
	})
	t.Run("strict", func(t *testing.T) {
		_, err := Decrypt(io.Discard, bytes.NewReader(forged), cfg("cam-1", alice), Options{Strict: true})
		if !errors.Is(err, e2ee.ErrBundleSignature) {
			t.Fatalf("%v", err)
		}
	})
}

// A live consumer hears of each problem as it is counted, and can stop;
// with Live every block is written as soon as it is decrypted.
func TestLiveProblemsAsTheyCome(t *testing.T) {
	keys(t)
	plain := testenv.ReadFixture(t, "official-putmedia.mkv")
	encd := encrypt(t, plain, "cam-1", device)
	var causes []error
	stop := errors.New("stop here")
	_, err := Decrypt(io.Discard, bytes.NewReader(encd), cfg("cam-2", alice), Options{Live: true, OnProblem: func(err error, rep *Report) error {
		causes = append(causes, Cause(err))
		if len(causes) == 3 {
			return stop
		}
		return nil
	}})
	if !errors.Is(err, stop) || len(causes) != 3 || causes[0] != e2ee.ErrWrongStream || causes[1] != e2ee.ErrMissingKey {
		t.Fatalf("err %v, causes %v", err, causes)
	}
	w := &countingWriter{}
	rep, err := Decrypt(w, bytes.NewReader(encd), cfg("cam-1", alice), Options{Live: true})
	if err != nil || rep.Opened != 300 || w.writes < 300 {
		t.Fatalf("live: %v, %d opened, %d writes", err, rep.Opened, w.writes)
	}
}

type countingWriter struct{ writes int }

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return len(p), nil }
