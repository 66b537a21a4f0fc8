package e2ee

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
)

// Keys are generated once per test binary: tests need several, and the
// package's tests run under -race on a shared machine.
var (
	keysOnce                   sync.Once
	tDevice, tOtherDevice      *SigningKey
	tX25519, tXWing, tOutsider *PrivateKey
	tOutsiderXWing             *PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && err == nil {
				err = e
			}
		}
		tDevice, err = GenerateSigningKey()
		var e error
		tOtherDevice, e = GenerateSigningKey()
		must(e)
		tX25519, e = GenerateKey(KEMX25519)
		must(e)
		tXWing, e = GenerateKey(KEMXWing)
		must(e)
		tOutsider, e = GenerateKey(KEMX25519)
		must(e)
		tOutsiderXWing, e = GenerateKey(KEMXWing)
		must(e)
		if err != nil {
			panic(err)
		}
	})
}

func testEncryptor(t testing.TB, stream string, rcpts ...*PrivateKey) *Encryptor {
	t.Helper()
	testKeys(t)
	if len(rcpts) == 0 {
		rcpts = []*PrivateKey{tX25519, tXWing}
	}
	var pubs []*PublicKey
	for _, r := range rcpts {
		pubs = append(pubs, r.Public())
	}
	e, err := NewEncryptor(EncryptorConfig{Stream: stream, SigningKey: tDevice, Recipients: pubs})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// testEncryptorWith returns an Encryptor whose first epoch has the given
// secret and id (for the known-answer vector).
func testEncryptorWith(t testing.TB, suite Suite, stream string, secret []byte, epochID uint32) *Encryptor {
	t.Helper()
	testKeys(t)
	rnd := binary.BigEndian.AppendUint32(bytes.Clone(secret), epochID)
	e, err := NewEncryptor(EncryptorConfig{Stream: stream, Suite: suite, SigningKey: tDevice,
		Recipients: []*PublicKey{tX25519.Public()}, Rand: bytes.NewReader(rnd)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.NewEpoch(0); err != nil {
		t.Fatal(err)
	}
	return e
}

func testDecryptor(t testing.TB, stream string, keys ...*PrivateKey) (*Decryptor, *[]error) {
	t.Helper()
	testKeys(t)
	if len(keys) == 0 {
		keys = []*PrivateKey{tX25519}
	}
	var warns []error
	d, err := NewDecryptor(DecryptorConfig{Stream: stream, Devices: []*DeviceKey{tDevice.Public()}, Keys: keys,
		Warn: func(err error) { warns = append(warns, err) }})
	if err != nil {
		t.Fatal(err)
	}
	return d, &warns
}
