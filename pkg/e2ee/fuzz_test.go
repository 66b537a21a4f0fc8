package e2ee

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func FuzzParseHeader(f *testing.F) {
	for _, v := range [][2]uint64{{0, 0}, {7, 7}, {8, 8}, {0x123, 0x4567}, {0x10203041, 300}, {1<<64 - 1, 1<<64 - 1}} {
		f.Add(AppendHeader(nil, v[0], v[1]))
	}
	f.Add([]byte{0x80})
	f.Add([]byte{0x80, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		kid, ctr, n, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		// Only the canonical encoding parses: re-encoding gives the input.
		if got := AppendHeader(nil, kid, ctr); !bytes.Equal(got, b[:n]) {
			t.Fatalf("ParseHeader(%x) = %#x, %#x; re-encoded %x", b[:n], kid, ctr, got)
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	testKeys(f)
	for _, rs := range [][]*PrivateKey{{tX25519}, {tXWing}, {tX25519, tXWing}} {
		e := testEncryptor(f, "cam-1", rs...)
		b, err := e.NewEpoch(1795393128941)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(b[:40])
	}
	f.Add([]byte("KVK1"))
	f.Add([]byte("KVK2\x00\x05"))
	d, _ := testDecryptor(f, "cam-1", tX25519, tXWing)
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := ParseBundle(raw)
		if err != nil {
			if !errors.Is(err, ErrBundleMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is neither ErrBundleMalformed nor ErrUnsupported", err)
			}
		} else if len(b.Recipients) == 0 || len(b.Signature) != 64 || b.EpochID == 0 {
			t.Fatalf("accepted an invalid bundle: %v", b)
		}
		_, err = d.AddBundle(raw)
		for _, want := range []error{nil, ErrBundleMalformed, ErrUnsupported, ErrBundleSignature, ErrWrongStream, ErrReplay, ErrNotRecipient, ErrUnwrap} {
			if errors.Is(err, want) || err == want {
				return
			}
		}
		t.Fatalf("AddBundle error %v is not a SPEC.md §7.1 bundle error", err)
	})
}

func FuzzOpen(f *testing.F) {
	testKeys(f)
	e := testEncryptorWith(f, SuiteAES256GCM, "cam-1", bytes.Repeat([]byte{1}, 32), 0x01020304)
	for i, pt := range []string{"", "x", "KVS-E2EE test frame", strings.Repeat("v", 300)} {
		p, _ := e.Seal(nil, 1, i == 0, uint64(1000+i), []byte(pt))
		f.Add(uint8(1), i == 0, uint64(1000+i), p)
	}
	f.Add(uint8(2), false, uint64(0), []byte{0xb0, 0x10, 0x20, 0x30, 0x42})
	f.Add(uint8(1), false, uint64(0), []byte{})
	// One Decryptor for all inputs (an HPKE open per input would make the
	// fuzzer crawl); clearing its counters makes each input start from the
	// same state.
	d, _ := testDecryptor(f, "cam-1")
	if _, err := d.AddBundle(e.Bundle()); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, track uint8, keyframe bool, pts uint64, payload []byte) {
		for _, ep := range d.epochs {
			ep.seen, ep.last = [MaxTrack + 1]bool{}, [MaxTrack + 1]uint64{}
		}
		pt, err := d.Open(nil, track, keyframe, pts, payload)
		if err == nil {
			// Only a genuine frame opens: re-sealing it must reproduce it.
			kid, ctr, _, _ := ParseHeader(payload)
			base, _ := DeriveBaseKey(bytes.Repeat([]byte{1}, 32), "cam-1", uint32(kid>>4), track, SuiteAES256GCM)
			k, _ := NewKey(SuiteAES256GCM, base, kid)
			if again := k.Seal(nil, ctr, AppendMetadata(nil, track, keyframe, pts), pt); !bytes.Equal(again, payload) {
				t.Fatalf("opened a frame that is not a sealing of its plaintext")
			}
			return
		}
		for _, want := range []error{ErrMalformed, ErrTrackMismatch, ErrMissingKey, ErrHeadMismatch, ErrReplay, ErrAuth} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("Open error %v is not a SPEC.md §7.2 frame error", err)
	})
}

func FuzzParseKeys(f *testing.F) {
	testKeys(f)
	priv, _ := tX25519.MarshalFile()
	privXW, _ := tXWing.MarshalFile()
	f.Add(priv)
	f.Add(privXW)
	f.Add(tDevice.MarshalFile())
	f.Add([]byte(tX25519.Public().Entry() + " alice\n" + tXWing.Public().Entry() + "\n# c\n"))
	f.Add([]byte(tDevice.Public().Entry() + "\n"))
	f.Add([]byte("x25519:AAAA\n"))
	f.Add([]byte("rsa:AAAA\r\n\n"))
	known := []error{ErrKeyFormat, ErrKeyKind}
	check := func(t *testing.T, what string, err error) {
		if err == nil {
			return
		}
		for _, k := range known {
			if errors.Is(err, k) {
				return
			}
		}
		t.Fatalf("%s: error %v is neither ErrKeyFormat nor ErrKeyKind", what, err)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		ps, err := ParsePublicKeys("f", text)
		check(t, "ParsePublicKeys", err)
		for _, p := range ps {
			q, err := ParsePublicKey(p.Entry())
			if err != nil || q.ID() != p.ID() {
				t.Fatalf("public key does not round-trip: %v", err)
			}
		}
		_, err = ParseDeviceKeys("f", text)
		check(t, "ParseDeviceKeys", err)
		if k, err := ParsePrivateKey("f", text); err == nil {
			m, _ := k.MarshalFile()
			if k2, err := ParsePrivateKey("f", m); err != nil || k2.ID() != k.ID() {
				t.Fatalf("private key does not round-trip: %v", err)
			}
		} else {
			check(t, "ParsePrivateKey", err)
		}
		_, err = ParseSigningKey("f", text)
		check(t, "ParseSigningKey", err)
		_, err = ParsePublicKey(string(text))
		check(t, "ParsePublicKey", err)
	})
}
