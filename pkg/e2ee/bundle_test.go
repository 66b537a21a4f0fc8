package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

// resign replaces the signature of a bundle body (without signature) by the
// test device's, so that the checks after the signature can be reached.
func resign(body []byte) []byte {
	return append(bytes.Clone(body), ed25519.Sign(tDevice.sk, sigMessage(body))...)
}

func TestParseBundleErrors(t *testing.T) {
	testKeys(t)
	e := testEncryptor(t, "cam-1", tX25519)
	good, _ := e.NewEpoch(42)
	body := good[:len(good)-64]
	b, err := ParseBundle(good)
	if err != nil || b.Stream != "cam-1" || b.FirstPTS != 42 || b.Signer != tDevice.ID() || len(b.Recipients) != 1 ||
		b.Recipients[0].Recipient != tX25519.ID() || b.Recipients[0].KEM != KEMX25519 || len(good) != BundleFixedSize+5+RecipientEntrySize(KEMX25519) {
		t.Fatalf("ParseBundle = %v, %v", b, err)
	}
	if err := b.Verify([]*DeviceKey{tDevice.Public()}); err != nil {
		t.Fatal(err)
	}
	if err := b.Verify([]*DeviceKey{tOtherDevice.Public()}); !errors.Is(err, ErrBundleSignature) || !strings.Contains(err.Error(), "not a pinned") {
		t.Fatalf("Verify with another device: %v", err)
	}
	set := func(off int, v ...byte) []byte { c := bytes.Clone(body); copy(c[off:], v); return c }
	nOff := 4 + 2 + 4 + 8 + 2 + 5 + 8 + HeadDigestSize
	for _, c := range []struct {
		name    string
		raw     []byte
		want    error
		mention string
	}{
		{"empty", nil, ErrBundleMalformed, "too short"},
		{"unknown magic", append([]byte("KVK3"), good[4:]...), ErrUnsupported, `"KVK3"`},
		{"unknown suite", resign(set(4, 0x00, 0x01)), ErrUnsupported, "AES_128_CTR_HMAC_SHA256_80"},
		{"private suite", resign(set(4, 0xf0, 0x00)), ErrUnsupported, "0xf000"},
		{"epoch id 0", resign(set(6, 0, 0, 0, 0)), ErrBundleMalformed, "epoch id 0"},
		{"no recipients", resign(append(bytes.Clone(body[:nOff]), 0)), ErrBundleMalformed, "no recipients"},
		{"truncated header", good[:10], ErrBundleMalformed, "truncated"},
		{"truncated recipient", good[:nOff+20], ErrBundleMalformed, "recipient 0"},
		{"truncated head digest", good[:nOff-10], ErrBundleMalformed, "head digest"},
		{"no signature", body, ErrBundleMalformed, "signature"},
		{"trailing byte", append(bytes.Clone(good), 0), ErrBundleMalformed, "signature"},
		{"wrong enc length", resign(set(nOff+1+10, 0, 31)), ErrBundleMalformed, ""},
		{"stream length beyond the end", resign(set(18, 0xff, 0xff)), ErrBundleMalformed, "stream name"},
	} {
		_, err := ParseBundle(c.raw)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: %v, want %v mentioning %q", c.name, err, c.want, c.mention)
		}
	}
	// Through the Decryptor, a re-signed bundle with another suite is
	// ErrUnsupported, one with another stream ErrWrongStream.
	d, _ := testDecryptor(t, "cam-1")
	if _, err := d.AddBundle(resign(set(4, 0x00, 0x02))); !errors.Is(err, ErrUnsupported) {
		t.Errorf("re-signed suite 2: %v", err)
	}
	other := bytes.Clone(body)
	copy(other[20:25], "cam-9")
	if _, err := d.AddBundle(resign(other)); !errors.Is(err, ErrWrongStream) {
		t.Errorf("re-signed stream: %v", err)
	}
	// A bundle signed by a pinned device but naming another signer id.
	lie := bytes.Clone(body)
	otherID := tOtherDevice.ID()
	copy(lie[25:33], otherID[:])
	if _, err := d.AddBundle(resign(lie)); !errors.Is(err, ErrBundleSignature) {
		t.Errorf("signer id mismatch: %v", err)
	}
	// A corrupted wrap, correctly signed: ErrUnwrap.
	wrap := bytes.Clone(body)
	wrap[len(wrap)-1] ^= 1
	if _, err := d.AddBundle(resign(wrap)); !errors.Is(err, ErrUnwrap) {
		t.Errorf("corrupted wrap: %v", err)
	}
}
