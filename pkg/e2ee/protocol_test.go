package e2ee

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

type sealed struct {
	track    uint8
	keyframe bool
	pts      uint64
	payload  []byte
	plain    []byte
}

// produce seals n frames per track (tracks 1 and 2) in one epoch.
func produce(t testing.TB, e *Encryptor, firstPTS uint64, n int) (bundle []byte, frames []sealed) {
	t.Helper()
	bundle, err := e.NewEpoch(firstPTS)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		for _, tr := range []uint8{1, 2} {
			f := sealed{track: tr, keyframe: tr == 1 && i%10 == 0, pts: firstPTS + uint64(i*33), plain: []byte(fmt.Sprintf("track %d frame %d", tr, i))}
			if f.payload, err = e.Seal(nil, f.track, f.keyframe, f.pts, f.plain); err != nil {
				t.Fatal(err)
			}
			frames = append(frames, f)
		}
	}
	return bundle, frames
}

func openAll(t testing.TB, d *Decryptor, frames []sealed) {
	t.Helper()
	for i, f := range frames {
		got, err := d.Open(nil, f.track, f.keyframe, f.pts, f.payload)
		if err != nil || !bytes.Equal(got, f.plain) {
			t.Fatalf("frame %d: %q, %v", i, got, err)
		}
	}
}

func TestRoundTripRecipientMatrix(t *testing.T) {
	testKeys(t)
	for _, suite := range []Suite{SuiteAES256GCM, SuiteAES128GCM} {
		e, err := NewEncryptor(EncryptorConfig{Stream: "cam-1", Suite: suite, SigningKey: tDevice,
			Recipients: []*PublicKey{tX25519.Public(), tXWing.Public()}})
		if err != nil {
			t.Fatal(err)
		}
		bundle, frames := produce(t, e, 1_000_000, 30)
		if len(bundle) != BundleSize("cam-1", []*PublicKey{tX25519.Public(), tXWing.Public()}) || len(bundle) != 125+5+94+1182 {
			t.Errorf("bundle is %d bytes, want %d", len(bundle), 125+5+94+1182)
		}
		for _, k := range []*PrivateKey{tX25519, tXWing} {
			d, _ := testDecryptor(t, "cam-1", k)
			info, err := d.AddBundle(bundle)
			if err != nil || info.ID != e.Epoch().ID || info.Suite != suite || info.FirstPTS != 1_000_000 {
				t.Fatalf("%v: AddBundle = %v, %v", k, info, err)
			}
			openAll(t, d, frames)
		}
		for _, k := range []*PrivateKey{tOutsider, tOutsiderXWing} {
			d, _ := testDecryptor(t, "cam-1", k)
			if _, err := d.AddBundle(bundle); !errors.Is(err, ErrNotRecipient) {
				t.Fatalf("outsider %v: %v, want ErrNotRecipient", k, err)
			}
			_, err := d.Open(nil, 1, true, frames[0].pts, frames[0].payload)
			if !errors.Is(err, ErrMissingKey) || !bytes.Contains([]byte(err.Error()), []byte("not a recipient")) {
				t.Fatalf("outsider frame: %v, want ErrMissingKey naming the cause", err)
			}
		}
	}
}

func TestLateJoinerAndRepeatedBundle(t *testing.T) {
	e := testEncryptor(t, "cam-1")
	bundle, frames := produce(t, e, 5000, 50)
	d, warns := testDecryptor(t, "cam-1")
	for i := 0; i < 3; i++ { // the bundle repeats in every Cluster
		if _, err := d.AddBundle(bundle); err != nil {
			t.Fatal(err)
		}
	}
	openAll(t, d, frames[40:])
	if len(*warns) != 0 {
		t.Errorf("late joiner warned: %v", *warns)
	}
}

// TestAttacks: each manipulation of an encrypted stream is detected with its
// own error (SPEC.md §7, §8).
func TestAttacks(t *testing.T) {
	testKeys(t)
	e := testEncryptor(t, "cam-1")
	bundle, frames := produce(t, e, 10_000, 20)
	other := testEncryptor(t, "cam-2")
	otherBundle, otherFrames := produce(t, other, 10_000, 20)
	forger, err := NewEncryptor(EncryptorConfig{Stream: "cam-1", SigningKey: tOtherDevice, Recipients: []*PublicKey{tX25519.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	forgedBundle, forgedFrames := produce(t, forger, 10_000, 2)

	fresh := func() (*Decryptor, *[]error) {
		d, w := testDecryptor(t, "cam-1")
		if _, err := d.AddBundle(bundle); err != nil {
			t.Fatal(err)
		}
		return d, w
	}
	open := func(d *Decryptor, f sealed) error {
		_, err := d.Open(nil, f.track, f.keyframe, f.pts, f.payload)
		return err
	}
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 0x01; return c }

	t.Run("bit flip in a frame", func(t *testing.T) {
		for i := HeaderLen(KID(e.Epoch().ID, 1), 0); i < len(frames[0].payload); i++ {
			d, _ := fresh()
			f := frames[0]
			f.payload = flip(f.payload, i)
			if err := open(d, f); !errors.Is(err, ErrAuth) {
				t.Fatalf("flip at %d: %v, want ErrAuth", i, err)
			}
		}
	})
	t.Run("bit flip in a frame header", func(t *testing.T) {
		for i := 0; i < HeaderLen(KID(e.Epoch().ID, 1), 0); i++ {
			for bit := 0; bit < 8; bit++ {
				d, _ := fresh()
				f := frames[0]
				f.payload = bytes.Clone(f.payload)
				f.payload[i] ^= 1 << bit
				err := open(d, f)
				if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTrackMismatch) && !errors.Is(err, ErrMissingKey) {
					t.Fatalf("flip byte %d bit %d: %v", i, bit, err)
				}
			}
		}
	})
	t.Run("duplicated frame", func(t *testing.T) {
		d, _ := fresh()
		if err := open(d, frames[0]); err != nil {
			t.Fatal(err)
		}
		if err := open(d, frames[0]); !errors.Is(err, ErrReplay) {
			t.Fatalf("%v, want ErrReplay", err)
		}
	})
	t.Run("swapped frames", func(t *testing.T) {
		d, _ := fresh()
		if err := open(d, frames[2]); err != nil { // track 1 ctr 1 before ctr 0
			t.Fatal(err)
		}
		if err := open(d, frames[0]); !errors.Is(err, ErrReplay) {
			t.Fatalf("%v, want ErrReplay", err)
		}
	})
	t.Run("payloads swapped between blocks", func(t *testing.T) {
		d, _ := fresh()
		f := frames[2]
		f.payload = frames[4].payload // ctr 2's bytes in ctr 1's block: its pts differs
		if err := open(d, f); !errors.Is(err, ErrAuth) {
			t.Fatalf("%v, want ErrAuth", err)
		}
	})
	t.Run("shifted timecode", func(t *testing.T) {
		d, _ := fresh()
		f := frames[0]
		f.pts++
		if err := open(d, f); !errors.Is(err, ErrAuth) {
			t.Fatalf("%v, want ErrAuth", err)
		}
	})
	t.Run("flipped keyframe flag", func(t *testing.T) {
		d, _ := fresh()
		f := frames[0]
		f.keyframe = !f.keyframe
		if err := open(d, f); !errors.Is(err, ErrAuth) {
			t.Fatalf("%v, want ErrAuth", err)
		}
	})
	t.Run("frame moved to another track", func(t *testing.T) {
		d, _ := fresh()
		f := frames[0]
		f.track = 2
		if err := open(d, f); !errors.Is(err, ErrTrackMismatch) {
			t.Fatalf("%v, want ErrTrackMismatch", err)
		}
	})
	t.Run("frames spliced from another stream", func(t *testing.T) {
		d, _ := fresh()
		if err := open(d, otherFrames[0]); !errors.Is(err, ErrMissingKey) {
			t.Fatalf("%v, want ErrMissingKey", err)
		}
	})
	t.Run("bundle spliced from another stream", func(t *testing.T) {
		d, _ := fresh()
		if _, err := d.AddBundle(otherBundle); !errors.Is(err, ErrWrongStream) {
			t.Fatalf("%v, want ErrWrongStream", err)
		}
	})
	t.Run("forged bundle from a non-device key", func(t *testing.T) {
		d, _ := testDecryptor(t, "cam-1")
		if _, err := d.AddBundle(forgedBundle); !errors.Is(err, ErrBundleSignature) {
			t.Fatalf("%v, want ErrBundleSignature", err)
		}
		if err := open(d, forgedFrames[0]); !errors.Is(err, ErrMissingKey) {
			t.Fatalf("forged frame: %v, want ErrMissingKey", err)
		}
	})
	t.Run("every bundle byte flip", func(t *testing.T) {
		for i := range bundle {
			d, _ := testDecryptor(t, "cam-1")
			_, err := d.AddBundle(flip(bundle, i))
			want := ErrBundleSignature
			if i < len(BundleMagic) {
				want = ErrUnsupported
			}
			if !errors.Is(err, want) {
				t.Fatalf("flip at %d: %v, want %v", i, err, want)
			}
		}
	})
	t.Run("truncated bundle", func(t *testing.T) {
		d, _ := testDecryptor(t, "cam-1")
		if _, err := d.AddBundle(bundle[:50]); !errors.Is(err, ErrBundleMalformed) {
			t.Fatalf("%v, want ErrBundleMalformed", err)
		}
	})
	t.Run("withheld fragment", func(t *testing.T) {
		d, warns := fresh()
		var track1 []sealed
		for _, f := range frames {
			if f.track == 1 {
				track1 = append(track1, f)
			}
		}
		openAll(t, d, track1[:5])
		openAll(t, d, track1[12:]) // frames 5..11 withheld
		if len(*warns) != 1 {
			t.Fatalf("warnings %v, want one gap", *warns)
		}
		var g *FrameGap
		if !errors.As((*warns)[0], &g) || !errors.Is(g, ErrGap) || g.From != 5 || g.To != 11 || g.KID != KID(e.Epoch().ID, 1) {
			t.Fatalf("warning %v, want gap 5..11", (*warns)[0])
		}
	})
	t.Run("malformed frame", func(t *testing.T) {
		d, _ := fresh()
		for _, p := range [][]byte{nil, {0xff, 1, 2}, frames[0].payload[:6]} {
			if _, err := d.Open(nil, 1, true, 0, p); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%x: %v, want ErrMalformed", p, err)
			}
		}
	})
}

func TestStaleEpochAndReplacement(t *testing.T) {
	e := testEncryptor(t, "cam-1")
	b1, f1 := produce(t, e, 50_000, 3)
	b2, _ := produce(t, e, 40_000, 3) // a later epoch claiming older footage
	d, warns := testDecryptor(t, "cam-1")
	if _, err := d.AddBundle(b1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddBundle(b2); err != nil {
		t.Fatal(err)
	}
	if len(*warns) != 1 || !errors.Is((*warns)[0], ErrStaleEpoch) {
		t.Fatalf("warnings %v, want one ErrStaleEpoch", *warns)
	}
	// An epoch id reused by another process (same id, different bytes)
	// replaces the epoch and its replay state.
	openAll(t, d, f1)
	e3 := testEncryptorWith(t, SuiteAES256GCM, "cam-1", bytes.Repeat([]byte{9}, 32), 0x55)
	e4 := testEncryptorWith(t, SuiteAES256GCM, "cam-1", bytes.Repeat([]byte{8}, 32), 0x55)
	for _, enc := range []*Encryptor{e3, e4} {
		if _, err := d.AddBundle(enc.Bundle()); err != nil {
			t.Fatal(err)
		}
		p, _ := enc.Seal(nil, 1, true, 60_000, []byte("x"))
		if _, err := d.Open(nil, 1, true, 60_000, p); err != nil {
			t.Fatalf("epoch 0x55 after replacement: %v", err)
		}
	}
	// Reset forgets epochs and replay windows.
	p, _ := e4.Seal(nil, 1, true, 60_001, []byte("y"))
	if _, err := d.Open(nil, 1, true, 60_001, p); err != nil {
		t.Fatal(err)
	}
	d.Reset()
	if _, err := d.Open(nil, 1, true, 60_001, p); !errors.Is(err, ErrMissingKey) {
		t.Fatalf("after Reset, before the bundle: %v", err)
	}
	if _, err := d.AddBundle(e4.Bundle()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(nil, 1, true, 60_001, p); err != nil {
		t.Fatalf("after Reset: %v", err)
	}
}

// TestNoNonceReuseAcrossRestarts: every process start makes a new epoch
// secret, so no (sframe_key, nonce) pair repeats across restarts, tracks
// or epochs.
func TestNoNonceReuseAcrossRestarts(t *testing.T) {
	testKeys(t)
	restarts, epochs, perTrack := 300, 2, 20
	if testing.Short() {
		restarts = 50
	}
	seen := make(map[string]bool, restarts*epochs*2*perTrack)
	for r := 0; r < restarts; r++ {
		e, err := NewEncryptor(EncryptorConfig{Stream: "cam-1", SigningKey: tDevice, Recipients: []*PublicKey{tX25519.Public()}})
		if err != nil {
			t.Fatal(err)
		}
		var prev uint32
		for ep := 0; ep < epochs; ep++ {
			if _, err := e.NewEpoch(uint64(ep)); err != nil {
				t.Fatal(err)
			}
			id := e.Epoch().ID
			if id == 0 || id == prev {
				t.Fatalf("epoch id %#x after %#x", id, prev)
			}
			prev = id
			for _, tr := range []uint8{1, 2} {
				base, _ := DeriveBaseKey(e.epoch.secret, "cam-1", id, tr, DefaultSuite)
				key, salt, _ := deriveKeySalt(DefaultSuite, base, KID(id, tr))
				for i := 0; i < perTrack; i++ {
					ct, err := e.Seal(nil, tr, false, 0, nil)
					if err != nil {
						t.Fatal(err)
					}
					_, ctr, _, _ := ParseHeader(ct)
					nonce := bytes.Clone(salt)
					for j := 0; j < 8; j++ {
						nonce[11-j] ^= byte(ctr >> (8 * j))
					}
					k := string(key) + string(nonce)
					if seen[k] {
						t.Fatalf("restart %d epoch %d track %d ctr %d: (key, nonce) reused", r, ep, tr, ctr)
					}
					seen[k] = true
				}
			}
		}
	}
}

func TestEncryptorConfigAndRotation(t *testing.T) {
	testKeys(t)
	rcpt := []*PublicKey{tX25519.Public()}
	for name, cfg := range map[string]EncryptorConfig{
		"no stream":         {SigningKey: tDevice, Recipients: rcpt},
		"no signing key":    {Stream: "s", Recipients: rcpt},
		"no recipients":     {Stream: "s", SigningKey: tDevice},
		"ctr suite":         {Stream: "s", SigningKey: tDevice, Recipients: rcpt, Suite: SuiteAES128CTRHMACSHA256_80},
		"duplicate":         {Stream: "s", SigningKey: tDevice, Recipients: append(rcpt, tX25519.Public())},
		"negative rotation": {Stream: "s", SigningKey: tDevice, Recipients: rcpt, RotationInterval: -1},
	} {
		if _, err := NewEncryptor(cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	now := time.Unix(1000, 0)
	e, err := NewEncryptor(EncryptorConfig{Stream: "s", SigningKey: tDevice, Recipients: rcpt, RotationInterval: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Seal(nil, 1, true, 0, nil); !errors.Is(err, ErrNoEpoch) {
		t.Errorf("Seal before NewEpoch: %v", err)
	}
	if !e.RotationDue() {
		t.Error("no epoch yet but RotationDue is false")
	}
	e.NewEpoch(0)
	if e.RotationDue() {
		t.Error("RotationDue right after NewEpoch")
	}
	if _, err := e.Seal(nil, 16, true, 0, nil); !errors.Is(err, ErrTrack) {
		t.Errorf("track 16: %v", err)
	}
	now = now.Add(time.Minute)
	if !e.RotationDue() {
		t.Error("RotationDue false after the interval")
	}
	e.NewEpoch(1)
	e.SetRecipients([]*PublicKey{tXWing.Public()})
	if !e.RotationDue() {
		t.Error("RotationDue false after SetRecipients")
	}
	e.NewEpoch(2)
	e.epoch.next[1] = MaxCounter - 10
	if !e.RotationDue() {
		t.Error("RotationDue false near counter exhaustion")
	}
	e.epoch.next[1] = MaxCounter + 1
	if _, err := e.Seal(nil, 1, true, 0, nil); !errors.Is(err, ErrCounterExhausted) {
		t.Errorf("exhausted counter: %v", err)
	}
	e.Close()
	if _, err := e.Seal(nil, 1, true, 0, nil); !errors.Is(err, ErrNoEpoch) {
		t.Errorf("Seal after Close: %v", err)
	}
}

func TestSealOpenAllocs(t *testing.T) {
	e := testEncryptor(t, "cam-1")
	bundle, _ := e.NewEpoch(0)
	d, _ := testDecryptor(t, "cam-1")
	if _, err := d.AddBundle(bundle); err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, 5000)
	ct := make([]byte, 0, len(pt)+MaxOverhead)
	out := make([]byte, 0, len(pt))
	pts := uint64(0)
	step := func() {
		pts++
		var err error
		ct, err = e.Seal(ct[:0], 1, false, pts, pt)
		if err != nil {
			t.Fatal(err)
		}
		if out, err = d.Open(out[:0], 1, false, pts, ct); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("Seal+Open allocate %v times per frame, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { d.AddBundle(bundle) }); n != 0 {
		t.Errorf("a repeated bundle allocates %v times, want 0", n)
	}
}
