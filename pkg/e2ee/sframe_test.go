package e2ee

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	*h = d
	return err
}

type rfcVectors struct {
	Header []struct {
		KID     uint64   `json:"kid"`
		CTR     uint64   `json:"ctr"`
		Encoded hexBytes `json:"encoded"`
	} `json:"header"`
	AESCTRHMAC    []aeadVector `json:"aes_ctr_hmac"`
	AES256CTRHMAC []aeadVector `json:"aes_256_ctr_hmac"`
	SFrame        []struct {
		Suite      Suite    `json:"cipher_suite"`
		KID        uint64   `json:"kid"`
		CTR        uint64   `json:"ctr"`
		BaseKey    hexBytes `json:"base_key"`
		SFrameKey  hexBytes `json:"sframe_key"`
		SFrameSalt hexBytes `json:"sframe_salt"`
		Metadata   hexBytes `json:"metadata"`
		Nonce      hexBytes `json:"nonce"`
		PT         hexBytes `json:"pt"`
		CT         hexBytes `json:"ct"`
	} `json:"sframe"`
}

type aeadVector struct {
	Suite   Suite    `json:"cipher_suite"`
	Key     hexBytes `json:"key"`
	EncKey  hexBytes `json:"enc_key"`
	AuthKey hexBytes `json:"auth_key"`
	Nonce   hexBytes `json:"nonce"`
	AAD     hexBytes `json:"aad"`
	PT      hexBytes `json:"pt"`
	CT      hexBytes `json:"ct"`
}

func loadVectors(t testing.TB) *rfcVectors {
	var v rfcVectors
	if err := json.Unmarshal(testenv.ReadFixture(t, "sframe-rfc9605-test-vectors.json"), &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func TestRFC9605Header(t *testing.T) {
	v := loadVectors(t)
	if len(v.Header) != 289 {
		t.Fatalf("fixture has %d header vectors, want 289", len(v.Header))
	}
	for _, h := range v.Header {
		got := AppendHeader(nil, h.KID, h.CTR)
		if !bytes.Equal(got, h.Encoded) {
			t.Errorf("AppendHeader(%#x, %#x) = %x, want %x", h.KID, h.CTR, got, []byte(h.Encoded))
		}
		if HeaderLen(h.KID, h.CTR) != len(h.Encoded) {
			t.Errorf("HeaderLen(%#x, %#x) = %d, want %d", h.KID, h.CTR, HeaderLen(h.KID, h.CTR), len(h.Encoded))
		}
		kid, ctr, n, err := ParseHeader(append(bytes.Clone(h.Encoded), 0xAA, 0xBB))
		if err != nil || kid != h.KID || ctr != h.CTR || n != len(h.Encoded) {
			t.Errorf("ParseHeader(%x) = %#x, %#x, %d, %v", []byte(h.Encoded), kid, ctr, n, err)
		}
		for cut := 0; cut < len(h.Encoded); cut++ {
			if _, _, _, err := ParseHeader(h.Encoded[:cut]); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseHeader(%x) truncated: err = %v, want ErrMalformed", []byte(h.Encoded[:cut]), err)
			}
		}
	}
}

func TestParseHeaderRejectsNonMinimal(t *testing.T) {
	for _, in := range []string{"8005", "0805", "900005", "9000ff", "0900ff"} {
		b, _ := hex.DecodeString(in)
		if _, _, _, err := ParseHeader(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeader(%s) err = %v, want ErrMalformed", in, err)
		}
	}
}

func testAEADVector(t *testing.T, a aeadVector, newAEAD func() (interface {
	Seal(dst, nonce, plaintext, aad []byte) []byte
	Open(dst, nonce, ciphertext, aad []byte) ([]byte, error)
}, error)) {
	t.Helper()
	c, err := newAEAD()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Seal(nil, a.Nonce, a.PT, a.AAD); !bytes.Equal(got, a.CT) {
		t.Errorf("suite %#x seal = %x, want %x", uint16(a.Suite), got, []byte(a.CT))
	}
	if got, err := c.Open(nil, a.Nonce, a.CT, a.AAD); err != nil || !bytes.Equal(got, a.PT) {
		t.Errorf("suite %#x open = %x, %v", uint16(a.Suite), got, err)
	}
	bad := bytes.Clone(a.CT)
	bad[len(bad)-1] ^= 1
	if _, err := c.Open(nil, a.Nonce, bad, a.AAD); !errors.Is(err, ErrAuth) {
		t.Errorf("suite %#x tampered open err = %v", uint16(a.Suite), err)
	}
}

func TestRFC9605AESCTRHMAC(t *testing.T) {
	v := loadVectors(t)
	if len(v.AESCTRHMAC) != 3 {
		t.Fatalf("fixture has %d AES-CTR-HMAC vectors, want 3", len(v.AESCTRHMAC))
	}
	for _, a := range v.AESCTRHMAC {
		p, _ := a.Suite.params()
		if !bytes.Equal(a.Key[:p.nka], a.EncKey) || !bytes.Equal(a.Key[p.nka:], a.AuthKey) {
			t.Errorf("suite %v: key split differs from the vector", a.Suite)
		}
		testAEADVector(t, a, func() (interface {
			Seal(dst, nonce, plaintext, aad []byte) []byte
			Open(dst, nonce, ciphertext, aad []byte) ([]byte, error)
		}, error) {
			return NewAEAD(a.Suite, a.Key)
		})
	}
}

// The aes_256_ctr_hmac entries are suites 0x0006-0x0008 of a later draft
// (draft-barnes-sframe-iana-256), not RFC 9605; kvsgo does not offer them as
// suites, but the compound AEAD construction reproduces them, with tags of
// 10, 8 and 4 bytes as for 0x0001-0x0003.
func TestDraftAES256CTRHMAC(t *testing.T) {
	v := loadVectors(t)
	tags := map[Suite]int{6: 10, 7: 8, 8: 4}
	for _, a := range v.AES256CTRHMAC {
		tag, ok := tags[a.Suite]
		if !ok {
			t.Logf("skipping unknown draft suite %#x", uint16(a.Suite))
			continue
		}
		testAEADVector(t, a, func() (interface {
			Seal(dst, nonce, plaintext, aad []byte) []byte
			Open(dst, nonce, ciphertext, aad []byte) ([]byte, error)
		}, error) {
			return newCTRHMAC(a.EncKey, a.AuthKey, sha512.New, tag)
		})
	}
}

func TestRFC9605SFrame(t *testing.T) {
	v := loadVectors(t)
	if len(v.SFrame) != 5 {
		t.Fatalf("fixture has %d SFrame vectors, want 5", len(v.SFrame))
	}
	for _, s := range v.SFrame {
		t.Run(s.Suite.String(), func(t *testing.T) {
			key, salt, err := deriveKeySalt(s.Suite, s.BaseKey, s.KID)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(key, s.SFrameKey) || !bytes.Equal(salt, s.SFrameSalt) {
				t.Errorf("derive_key_salt = %x, %x; want %x, %x", key, salt, []byte(s.SFrameKey), []byte(s.SFrameSalt))
			}
			k, err := NewKey(s.Suite, s.BaseKey, s.KID)
			if err != nil {
				t.Fatal(err)
			}
			k.setNonce(s.CTR)
			if !bytes.Equal(k.nonce[:], s.Nonce) {
				t.Errorf("nonce = %x, want %x", k.nonce, []byte(s.Nonce))
			}
			prefix := []byte("prefix")
			got := k.Seal(bytes.Clone(prefix), s.CTR, s.Metadata, s.PT)
			if !bytes.Equal(got[len(prefix):], s.CT) || !bytes.Equal(got[:len(prefix)], prefix) {
				t.Errorf("Seal = %x, want %x", got[len(prefix):], []byte(s.CT))
			}
			pt, ctr, err := k.Open(nil, s.Metadata, s.CT)
			if err != nil || ctr != s.CTR || !bytes.Equal(pt, s.PT) {
				t.Errorf("Open = %x, %d, %v", pt, ctr, err)
			}
			if _, _, err := k.Open(nil, append(bytes.Clone(s.Metadata), 0), s.CT); !errors.Is(err, ErrAuth) {
				t.Errorf("Open with other metadata: %v, want ErrAuth", err)
			}
			if _, _, err := k.Open(nil, s.Metadata, s.CT[:len(s.CT)-1]); !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) {
				t.Errorf("Open of a short ciphertext: %v", err)
			}
			hl := HeaderLen(s.KID, s.CTR)
			if _, _, err := k.Open(nil, s.Metadata, s.CT[:hl+s.Suite.TagSize()-1]); !errors.Is(err, ErrMalformed) {
				t.Errorf("Open of a ciphertext shorter than its tag: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseSuite(t *testing.T) {
	for in, want := range map[string]Suite{"5": 5, "0x0004": 4, "AES_256_GCM_SHA512_128": 5, "aes-128-gcm": 4, " aes_128_gcm_sha256_128 ": 4, "1": 1} {
		if got, err := ParseSuite(in); err != nil || got != want {
			t.Errorf("ParseSuite(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "6", "chacha", "0x10005"} {
		if _, err := ParseSuite(in); !errors.Is(err, ErrSuite) {
			t.Errorf("ParseSuite(%q) err = %v, want ErrSuite", in, err)
		}
	}
	if _, err := NewAEAD(SuiteAES256GCM, make([]byte, 16)); !errors.Is(err, ErrKeySize) {
		t.Errorf("NewAEAD with a short key: %v", err)
	}
	if _, err := NewKey(Suite(9), make([]byte, 32), 1); !errors.Is(err, ErrSuite) {
		t.Errorf("NewKey with suite 9: %v", err)
	}
}
