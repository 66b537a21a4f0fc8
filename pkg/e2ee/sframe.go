package e2ee

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"strconv"
	"strings"
)

// Suite is an RFC 9605 SFrame cipher suite (IANA "SFrame Cipher Suites").
type Suite uint16

// The RFC 9605 cipher suites. kvsgo streams use SuiteAES256GCM (the default)
// or SuiteAES128GCM; the CTR-HMAC suites exist for the RFC's vectors and for
// consumers of other SFrame streams. The short-tag suites must not be used
// without anti-replay and rate limits (RFC 9605 §7.5).
const (
	SuiteAES128CTRHMACSHA256_80 Suite = 0x0001
	SuiteAES128CTRHMACSHA256_64 Suite = 0x0002
	SuiteAES128CTRHMACSHA256_32 Suite = 0x0003
	SuiteAES128GCM              Suite = 0x0004 // AES_128_GCM_SHA256_128
	SuiteAES256GCM              Suite = 0x0005 // AES_256_GCM_SHA512_128, the default

	DefaultSuite = SuiteAES256GCM
)

// Sizes.
const (
	// MaxHeaderLen is the longest SFrame header: config byte, 8-byte KID,
	// 8-byte CTR.
	MaxHeaderLen = 17
	// NonceSize is Nn for every suite.
	NonceSize = 12
	// MaxOverhead bounds what Seal adds to a plaintext (header and the
	// longest tag).
	MaxOverhead = MaxHeaderLen + 16
)

type suiteParams struct {
	name    string
	hash    func() hash.Hash
	nka     int // AES key length within the SFrame key (CTR suites), 0 for GCM
	nk      int // SFrame key length
	tag     int // Nt
	ctrHMAC bool
}

func (s Suite) params() (suiteParams, bool) {
	switch s {
	case SuiteAES128CTRHMACSHA256_80:
		return suiteParams{"AES_128_CTR_HMAC_SHA256_80", sha256.New, 16, 48, 10, true}, true
	case SuiteAES128CTRHMACSHA256_64:
		return suiteParams{"AES_128_CTR_HMAC_SHA256_64", sha256.New, 16, 48, 8, true}, true
	case SuiteAES128CTRHMACSHA256_32:
		return suiteParams{"AES_128_CTR_HMAC_SHA256_32", sha256.New, 16, 48, 4, true}, true
	case SuiteAES128GCM:
		return suiteParams{"AES_128_GCM_SHA256_128", sha256.New, 0, 16, 16, false}, true
	case SuiteAES256GCM:
		return suiteParams{"AES_256_GCM_SHA512_128", sha512.New, 0, 32, 16, false}, true
	}
	return suiteParams{}, false
}

// Valid reports whether s is a suite this package implements.
func (s Suite) Valid() bool { _, ok := s.params(); return ok }

// TagSize is the suite's Nt (0 for an unknown suite).
func (s Suite) TagSize() int { p, _ := s.params(); return p.tag }

// KeySize is the suite's Nk, the length of the AEAD key (0 for an unknown
// suite).
func (s Suite) KeySize() int { p, _ := s.params(); return p.nk }

func (s Suite) String() string {
	if p, ok := s.params(); ok {
		return p.name
	}
	return fmt.Sprintf("suite(%#04x)", uint16(s))
}

// ParseSuite accepts a suite by number ("5", "0x0005") or by RFC name
// ("AES_256_GCM_SHA512_128", case-insensitive; "aes-256-gcm" and
// "aes-128-gcm" are accepted too), as the e2ee-suite property does.
func ParseSuite(s string) (Suite, error) {
	switch lower(s) {
	case "aes-256-gcm", "aes256gcm":
		return SuiteAES256GCM, nil
	case "aes-128-gcm", "aes128gcm":
		return SuiteAES128GCM, nil
	}
	for c := SuiteAES128CTRHMACSHA256_80; c <= SuiteAES256GCM; c++ {
		if lower(s) == lower(c.String()) {
			return c, nil
		}
	}
	if n, err := strconv.ParseUint(s, 0, 16); err == nil && Suite(n).Valid() {
		return Suite(n), nil
	}
	return 0, fmt.Errorf("%w: %q (want AES_256_GCM_SHA512_128 (5) or AES_128_GCM_SHA256_128 (4))", ErrSuite, s)
}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// AppendHeader appends the SFrame header for (kid, ctr) in its minimal
// encoding (RFC 9605 §4.3).
func AppendHeader(dst []byte, kid, ctr uint64) []byte {
	var cfg byte
	kl, cl := 0, 0
	if kid < 8 {
		cfg = byte(kid) << 4
	} else {
		kl = (bits.Len64(kid) + 7) / 8
		cfg = 0x80 | byte(kl-1)<<4
	}
	if ctr < 8 {
		cfg |= byte(ctr)
	} else {
		cl = (bits.Len64(ctr) + 7) / 8
		cfg |= 0x08 | byte(cl-1)
	}
	dst = append(dst, cfg)
	for i := kl - 1; i >= 0; i-- {
		dst = append(dst, byte(kid>>(8*i)))
	}
	for i := cl - 1; i >= 0; i-- {
		dst = append(dst, byte(ctr>>(8*i)))
	}
	return dst
}

// HeaderLen is the length of the SFrame header AppendHeader writes.
func HeaderLen(kid, ctr uint64) int {
	n := 1
	if kid >= 8 {
		n += (bits.Len64(kid) + 7) / 8
	}
	if ctr >= 8 {
		n += (bits.Len64(ctr) + 7) / 8
	}
	return n
}

// ParseHeader parses the SFrame header at the start of b and returns the
// KID, the CTR and the header's length. A truncated header or one that is
// not minimally encoded (a value below 8 written in extended form, or with a
// leading zero byte) is ErrMalformed: the header is authenticated, so only
// the canonical form can ever open.
func ParseHeader(b []byte) (kid, ctr uint64, n int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	cfg := b[0]
	n = 1
	read := func(ext bool, v byte, what string) (uint64, error) {
		if !ext {
			return uint64(v), nil
		}
		l := int(v) + 1
		if len(b) < n+l {
			return 0, fmt.Errorf("%w: header truncated: %s needs %d bytes, %d left", ErrMalformed, what, l, len(b)-n)
		}
		var x uint64
		for _, c := range b[n : n+l] {
			x = x<<8 | uint64(c)
		}
		if b[n] == 0 || x < 8 {
			return 0, fmt.Errorf("%w: %s not minimally encoded", ErrMalformed, what)
		}
		n += l
		return x, nil
	}
	if kid, err = read(cfg&0x80 != 0, cfg>>4&7, "KID"); err != nil {
		return 0, 0, 0, err
	}
	if ctr, err = read(cfg&0x08 != 0, cfg&7, "CTR"); err != nil {
		return 0, 0, 0, err
	}
	return kid, ctr, n, nil
}

// NewAEAD returns the suite's AEAD for an SFrame key of suite.KeySize()
// bytes: AES-GCM, or the RFC 9605 §4.5.1 AES-CTR + truncated HMAC
// construction (enc_key = key[:Nka], auth_key = key[Nka:], IV = nonce ||
// 00000000). Its NonceSize is 12 and its Overhead the suite's tag size.
func NewAEAD(suite Suite, key []byte) (cipher.AEAD, error) {
	p, ok := suite.params()
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrSuite, suite)
	}
	if len(key) != p.nk {
		return nil, fmt.Errorf("%w: %v needs a %d-byte key, got %d bytes", ErrKeySize, suite, p.nk, len(key))
	}
	if p.ctrHMAC {
		return newCTRHMAC(key[:p.nka], key[p.nka:], p.hash, p.tag)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(blk)
}

// ctrHMAC is the RFC 9605 §4.5.1 compound AEAD.
type ctrHMAC struct {
	blk cipher.Block
	mac hash.Hash
	tag int
	sum []byte // scratch for the full MAC
	iv  [16]byte
}

func newCTRHMAC(encKey, authKey []byte, h func() hash.Hash, tag int) (*ctrHMAC, error) {
	blk, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	m := hmac.New(h, authKey)
	return &ctrHMAC{blk: blk, mac: m, tag: tag, sum: make([]byte, 0, m.Size())}, nil
}

func (c *ctrHMAC) NonceSize() int { return NonceSize }
func (c *ctrHMAC) Overhead() int  { return c.tag }

func (c *ctrHMAC) computeTag(nonce, aad, ct []byte) []byte {
	var lens [24]byte
	binary.BigEndian.PutUint64(lens[0:], uint64(len(aad)))
	binary.BigEndian.PutUint64(lens[8:], uint64(len(ct)))
	binary.BigEndian.PutUint64(lens[16:], uint64(c.tag))
	c.mac.Reset()
	c.mac.Write(lens[:])
	c.mac.Write(nonce)
	c.mac.Write(aad)
	c.mac.Write(ct)
	c.sum = c.mac.Sum(c.sum[:0])
	return c.sum[:c.tag]
}

func (c *ctrHMAC) xor(dst, src, nonce []byte) {
	copy(c.iv[:], nonce)
	clear(c.iv[NonceSize:])
	cipher.NewCTR(c.blk, c.iv[:]).XORKeyStream(dst, src)
}

func (c *ctrHMAC) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if len(nonce) != NonceSize {
		panic("e2ee: bad nonce length")
	}
	ret, out := grow(dst, len(plaintext)+c.tag)
	ct := out[:len(plaintext)]
	c.xor(ct, plaintext, nonce)
	copy(out[len(plaintext):], c.computeTag(nonce, aad, ct))
	return ret
}

func (c *ctrHMAC) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != NonceSize || len(ciphertext) < c.tag {
		return nil, ErrAuth
	}
	ct, tag := ciphertext[:len(ciphertext)-c.tag], ciphertext[len(ciphertext)-c.tag:]
	if subtle.ConstantTimeCompare(c.computeTag(nonce, aad, ct), tag) != 1 {
		return nil, ErrAuth
	}
	ret, out := grow(dst, len(ct))
	c.xor(out, ct, nonce)
	return ret, nil
}

// grow extends dst by n bytes and returns the whole slice and the new part.
func grow(dst []byte, n int) (whole, tail []byte) {
	total := len(dst) + n
	if cap(dst) >= total {
		whole = dst[:total]
	} else {
		whole = make([]byte, total, total+total/4)
		copy(whole, dst)
	}
	return whole, whole[len(dst):]
}

// deriveKeySalt is RFC 9605 §4.4.2 derive_key_salt.
func deriveKeySalt(suite Suite, baseKey []byte, kid uint64) (key, salt []byte, err error) {
	p, ok := suite.params()
	if !ok {
		return nil, nil, fmt.Errorf("%w: %v", ErrSuite, suite)
	}
	secret, err := hkdf.Extract(p.hash, baseKey, nil)
	if err != nil {
		return nil, nil, err
	}
	var tail [10]byte
	binary.BigEndian.PutUint64(tail[:8], kid)
	binary.BigEndian.PutUint16(tail[8:], uint16(suite))
	if key, err = hkdf.Expand(p.hash, secret, "SFrame 1.0 Secret key "+string(tail[:]), p.nk); err != nil {
		return nil, nil, err
	}
	if salt, err = hkdf.Expand(p.hash, secret, "SFrame 1.0 Secret salt "+string(tail[:]), NonceSize); err != nil {
		return nil, nil, err
	}
	clear(secret)
	return key, salt, nil
}

// Key is the SFrame state for one (suite, base_key, KID): the derived
// sframe_key in an AEAD and the sframe_salt. Seal and Open append to dst
// like cipher.AEAD and allocate nothing when dst has room.
//
// A Key is not safe for concurrent use (it owns scratch buffers). It does not
// track counters: the caller must never seal two frames with the same CTR
// (Encryptor does this). Its String method names only the suite and KID.
type Key struct {
	suite Suite
	kid   uint64
	aead  cipher.AEAD
	salt  [NonceSize]byte
	nonce [NonceSize]byte
	aad   []byte // scratch: header || metadata
}

// NewKey derives the SFrame key and salt for kid from baseKey (RFC 9605
// §4.4.2). baseKey may have any non-zero length; kvsgo's are 32 bytes.
func NewKey(suite Suite, baseKey []byte, kid uint64) (*Key, error) {
	if len(baseKey) == 0 {
		return nil, fmt.Errorf("%w: empty base key", ErrKeySize)
	}
	key, salt, err := deriveKeySalt(suite, baseKey, kid)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, err := NewAEAD(suite, key)
	if err != nil {
		return nil, err
	}
	k := &Key{suite: suite, kid: kid, aead: aead, aad: make([]byte, 0, MaxHeaderLen+MetadataLen)}
	copy(k.salt[:], salt)
	clear(salt)
	return k, nil
}

// Suite returns the key's cipher suite.
func (k *Key) Suite() Suite { return k.suite }

// KID returns the key's KID.
func (k *Key) KID() uint64 { return k.kid }

func (k Key) String() string { return fmt.Sprintf("sframe key %v kid=%#x", k.suite, k.kid) }

// Format prints String for every verb (%#v, %d, %x included), so that no
// formatting can reveal the salt or key.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

func (k *Key) setNonce(ctr uint64) {
	k.nonce = k.salt
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], ctr)
	subtle.XORBytes(k.nonce[4:], k.nonce[4:], c[:])
}

// Seal appends header(KID, ctr) || AEAD(plaintext) to dst, with AAD
// header || metadata and nonce sframe_salt XOR BE96(ctr), and returns the
// result. dst must not overlap plaintext. The caller guarantees ctr is never
// reused with this key.
func (k *Key) Seal(dst []byte, ctr uint64, metadata, plaintext []byte) []byte {
	start := len(dst)
	dst = AppendHeader(dst, k.kid, ctr)
	k.aad = append(append(k.aad[:0], dst[start:]...), metadata...)
	k.setNonce(ctr)
	return k.aead.Seal(dst, k.nonce[:], plaintext, k.aad)
}

// Open parses the SFrame header of ciphertext, checks its KID is this key's,
// authenticates header || metadata and the payload, and appends the
// plaintext to dst. It returns the CTR of the frame. Errors: ErrMalformed
// (bad header or too short), ErrMissingKey (another KID), ErrAuth.
func (k *Key) Open(dst []byte, metadata, ciphertext []byte) (out []byte, ctr uint64, err error) {
	kid, ctr, n, err := ParseHeader(ciphertext)
	if err != nil {
		return nil, 0, err
	}
	if kid != k.kid {
		return nil, 0, fmt.Errorf("%w: kid=%#x, key has kid=%#x", ErrMissingKey, kid, k.kid)
	}
	return k.open(dst, metadata, ciphertext, ctr, n)
}

func (k *Key) open(dst, metadata, ciphertext []byte, ctr uint64, n int) ([]byte, uint64, error) {
	if len(ciphertext)-n < k.aead.Overhead() {
		return nil, 0, fmt.Errorf("%w: %d bytes after a %d-byte header, shorter than the %d-byte tag", ErrMalformed, len(ciphertext)-n, n, k.aead.Overhead())
	}
	k.aad = append(append(k.aad[:0], ciphertext[:n]...), metadata...)
	k.setNonce(ctr)
	out, err := k.aead.Open(dst, k.nonce[:], ciphertext[n:], k.aad)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: kid=%#x ctr=%d", ErrAuth, k.kid, ctr)
	}
	return out, ctr, nil
}
