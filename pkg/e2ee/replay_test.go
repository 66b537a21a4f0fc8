package e2ee

import (
	"encoding/json"
	"errors"
	"testing"
)

type epochFrames struct {
	bundle []byte
	frames []sealed
}

// epochsOf seals n epochs of a stream, one second apart, 3 frames per
// track each.
func epochsOf(t *testing.T, e *Encryptor, n int) []epochFrames {
	var out []epochFrames
	for i := 0; i < n; i++ {
		b, f := produce(t, e, 1_000_000+uint64(i)*1000, 3)
		out = append(out, epochFrames{b, f})
	}
	return out
}

// feed gives the decryptor each epoch's bundle and frames in order and
// returns how many frames opened.
func feed(d *Decryptor, eps []epochFrames) (opened int, errs []error) {
	for _, ep := range eps {
		if _, err := d.AddBundle(ep.bundle); err != nil {
			errs = append(errs, err)
		}
		for _, f := range ep.frames {
			if _, err := d.Open(nil, f.track, f.keyframe, f.pts, f.payload); err != nil {
				errs = append(errs, err)
				continue
			}
			opened++
		}
	}
	return opened, errs
}

// Frames of an epoch that the decryptor no longer holds are never opened
// again: not the stream's first fragment appended after its tenth epoch,
// not the whole stream served twice, whatever MaxEpochs is.
func TestReplayAfterEviction(t *testing.T) {
	e := testEncryptor(t, "cam-1")
	eps := epochsOf(t, e, 10)
	for _, max := range []int{1, 2, DefaultMaxEpochs} {
		d, _ := testDecryptor(t, "cam-1")
		d.cfg.MaxEpochs = max
		if n, errs := feed(d, eps); n != 60 || len(errs) != 0 {
			t.Fatalf("max %d: first pass opened %d of 60: %v", max, n, errs)
		}
		n, errs := feed(d, eps[:1])
		if n != 0 {
			t.Fatalf("max %d: the first epoch replayed after the tenth: %d frames opened again", max, n)
		}
		if !errors.Is(errs[0], ErrReplay) {
			t.Fatalf("max %d: replayed bundle: %v", max, errs[0])
		}
		if n, _ := feed(d, eps); n != 0 {
			t.Fatalf("max %d: the stream served twice: %d of 60 frames opened again", max, n)
		}
		if len(d.epochs) > max || len(d.forgotten) != 1 || len(d.failed) > maxFailedBundles {
			t.Fatalf("max %d: %d epochs, %d marks, %d failed bundles held", max, len(d.epochs), len(d.forgotten), len(d.failed))
		}
		// Reset is the caller reading the footage again on purpose.
		d.Reset()
		if n, errs := feed(d, eps); n != 60 {
			t.Fatalf("max %d: after Reset %d of 60 opened: %v", max, n, errs)
		}
	}
}

// Memory stays bounded however many epochs a stream has.
func TestReplayStateIsBounded(t *testing.T) {
	e := testEncryptor(t, "cam-1")
	d, _ := testDecryptor(t, "cam-1")
	for i := 0; i < 300; i++ {
		b, f := produce(t, e, uint64(i)*1000, 1)
		if n, errs := feed(d, []epochFrames{{b, f}}); n != 2 {
			t.Fatalf("epoch %d: %v", i, errs)
		}
	}
	st := d.State()
	if len(d.epochs) != DefaultMaxEpochs || len(d.hashes) != DefaultMaxEpochs || len(d.forgotten) != 1 || len(st.Epochs) != DefaultMaxEpochs || len(st.Devices) != 1 {
		t.Fatalf("%d epochs, %d hashes, %d marks; state %d epochs %d devices", len(d.epochs), len(d.hashes), len(d.forgotten), len(st.Epochs), len(st.Devices))
	}
}

// The state a decryptor saves makes the next one refuse what it accepted,
// and lets it continue where it stopped.
func TestReplayAcrossRestart(t *testing.T) {
	e := testEncryptor(t, "cam-1")
	eps := epochsOf(t, e, 10)
	d, _ := testDecryptor(t, "cam-1")
	last := eps[9]
	if n, errs := feed(d, append(eps[:9:9], epochFrames{last.bundle, last.frames[:3]})); n != 57 {
		t.Fatalf("opened %d: %v", n, errs)
	}
	saved, err := json.Marshal(d.State())
	if err != nil {
		t.Fatal(err)
	}
	var st DecryptorState
	if err := json.Unmarshal(saved, &st); err != nil {
		t.Fatal(err)
	}
	testKeys(t)
	d2, err := NewDecryptor(DecryptorConfig{Stream: "cam-1", Devices: []*DeviceKey{tDevice.Public()}, Keys: []*PrivateKey{tX25519}, State: &st})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := feed(d2, eps[:9]); n != 0 {
		t.Fatalf("after a restart with state, %d replayed frames opened", n)
	}
	// The epoch held at the restart goes on from its last counter: the
	// three frames seen are replays, the three after them open.
	n, errs := feed(d2, []epochFrames{last})
	if n != 3 || len(errs) != 3 || !errors.Is(errs[0], ErrReplay) {
		t.Fatalf("current epoch after restart: %d opened, %v", n, errs)
	}
	// Without state a restarted decryptor has nothing to go by.
	d3, _ := testDecryptor(t, "cam-1")
	if n, _ := feed(d3, eps); n != 60 {
		t.Fatalf("fresh decryptor: %d", n)
	}
	for _, bad := range []string{`{"version":2}`, `{"version":1,"devices":[{"signer":"zz"}]}`, `{"version":1,"epochs":[{"bundle_sha256":"00","signer":"0000000000000000"}]}`,
		`{"version":1,"epochs":[{"bundle_sha256":"` + string(make([]byte, 0)) + `"}]}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &st); err == nil {
			t.Fatalf("state %s accepted", bad)
		}
	}
}
