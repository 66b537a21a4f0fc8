package e2ee

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExampleVector reproduces SPEC.md §9.1 exactly.
func TestExampleVector(t *testing.T) {
	secret := make([]byte, 32)
	for i := range secret {
		secret[i] = byte(i)
	}
	const stream, epochID, track = "cam-1", 0x01020304, 1
	if KID(epochID, track) != 0x10203041 {
		t.Fatalf("KID = %#x", KID(epochID, track))
	}
	if got := AppendHeader(nil, KID(epochID, track), 0); !bytes.Equal(got, unhex(t, "b010203041")) {
		t.Fatalf("header = %x", got)
	}
	type frame struct {
		ctr      uint64
		keyframe bool
		pts      uint64
		pt       string
	}
	frames := []frame{{0, true, 1795393128941, "KVS-E2EE test frame 0"}, {1, false, 1795393128975, "KVS-E2EE test frame 1"}, {300, false, 1795393138941, "x"}}
	if got := AppendMetadata(nil, track, true, frames[0].pts); !bytes.Equal(got, unhex(t, "4b56533101800000000001a205c509ed")) {
		t.Fatalf("metadata = %x", got)
	}
	for _, c := range []struct {
		suite      Suite
		base, salt string
		ct         [3]string
	}{
		{SuiteAES128GCM, "ca84bf25667070726f2d37580d680060ece3bbec7c6e0216c444f920a3d83a0d", "9d8528f71526d1ea04c3a1aa", [3]string{
			"b0102030412bfed1d33e653e2ae387b124aa37cf21f149f6c97f1e6dd5e41b6b1e5d7f969da2fb2b4ccd",
			"b11020304143ca582fd497222155b3ad141e486627d469e854c9b7b32d392442364f3499ddf1b4f81a70",
			"b910203041012c9c7ff7ddc22f7a3dc073ed5414aa10c800"}},
		{SuiteAES256GCM, "1b2b0977595868edb6581172f4596b0b501e23b41e2d9e29b2e3ac8904acd44f", "b5642dac57b0fbc182d96a1b", [3]string{
			"b01020304101cb9740147bd56e0e2151048cfaaf31bce3ef875ae97e971cef591420921b9343f0c56371",
			"b110203041eee3cbfe4ce51c53921f93aa00f5714c7b9689a0978823d69e897738a259c4d29eaf5e8bff",
			"b910203041012cb585984842233b959ec83cee694e346ba5"}},
	} {
		t.Run(c.suite.String(), func(t *testing.T) {
			base, err := DeriveBaseKey(secret, stream, epochID, track, c.suite)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(base, unhex(t, c.base)) {
				t.Errorf("base_key = %x, want %s", base, c.base)
			}
			k, err := NewKey(c.suite, base, KID(epochID, track))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.salt[:], unhex(t, c.salt)) {
				t.Errorf("sframe_salt = %x, want %s", k.salt, c.salt)
			}
			for i, f := range frames {
				got := k.Seal(nil, f.ctr, AppendMetadata(nil, track, f.keyframe, f.pts), []byte(f.pt))
				if !bytes.Equal(got, unhex(t, c.ct[i])) {
					t.Errorf("frame %d = %x, want %s", i, got, c.ct[i])
				}
			}
			// The same frames through the Encryptor/Decryptor path.
			enc := testEncryptorWith(t, c.suite, stream, secret, epochID)
			for _, f := range frames {
				enc.epoch.next[track] = f.ctr
				got, err := enc.Seal(nil, track, f.keyframe, f.pts, []byte(f.pt))
				if err != nil {
					t.Fatal(err)
				}
				if want := k.Seal(nil, f.ctr, AppendMetadata(nil, track, f.keyframe, f.pts), []byte(f.pt)); !bytes.Equal(got, want) {
					t.Errorf("Encryptor.Seal ctr %d = %x, want %x", f.ctr, got, want)
				}
			}
		})
	}
}

func TestDeriveBaseKeyErrors(t *testing.T) {
	if _, err := DeriveBaseKey(make([]byte, 31), "s", 1, 1, DefaultSuite); !errors.Is(err, ErrKeySize) {
		t.Errorf("short secret: %v", err)
	}
	for _, tr := range []uint8{0, 16} {
		if _, err := DeriveBaseKey(make([]byte, 32), "s", 1, tr, DefaultSuite); !errors.Is(err, ErrTrack) {
			t.Errorf("track %d: %v", tr, err)
		}
	}
}
