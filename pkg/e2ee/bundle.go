package e2ee

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/binary"
	"fmt"
)

// Key bundle layout (SPEC.md §4), all integers big-endian:
//
//	"KVK2" | BE16 suite | BE32 epoch_id | BE64 first_pts | L16(stream) | signer_id[8] | head_digest[32] | u8 n |
//	  n × ( BE16 kem_id | rcpt_id[8] | L16(enc) | L16(ct) ) | sig[64]
//
// sig = Ed25519(device key, "KVS-E2EE/1 bundle sig" || every preceding byte).
// Each (enc, ct) is HPKE base mode (KDF HKDF-SHA256, AEAD AES-256-GCM) of
// the 32-byte epoch secret to one recipient with
// info = "KVS-E2EE/1 wrap" || BE16 suite || BE32 epoch_id || L16(stream) || signer_id
// and empty AAD. head_digest is Head.Digest of the segment head the epoch's
// frames are presented with. The first version, "KVK1", has no
// head_digest; it is refused unless DecryptorConfig.AcceptV1Bundles.
const (
	// BundleMagic starts every bundle this package writes (version 2).
	BundleMagic = "KVK2"
	// BundleMagicV1 starts a version 1 bundle, which does not authenticate
	// the segment head.
	BundleMagicV1 = "KVK1"
	// BundleFixedSize is the size of a version 2 bundle with an empty
	// stream name and no recipient; add len(stream) and
	// RecipientEntrySize(kem) per recipient.
	BundleFixedSize = BundleFixedSizeV1 + HeadDigestSize
	// BundleFixedSizeV1 is BundleFixedSize for a version 1 bundle.
	BundleFixedSizeV1 = 4 + 2 + 4 + 8 + 2 + 8 + 1 + ed25519.SignatureSize
	// MaxRecipients is the most recipients a bundle holds (u8 n).
	MaxRecipients = 255
	// KeyTrackCodecID is the CodecID of the Matroska key track (TrackType
	// 17) that carries one bundle per Cluster (SPEC.md §6).
	KeyTrackCodecID = "S_KVSE2EE/KEYBUNDLE/V1"
	// KeyTrackType is the Matroska TrackType of the key track.
	KeyTrackType = 17
	// KeyTrackName is the Name of the key track.
	KeyTrackName = "kvs-e2ee-keys"

	sigLabel  = "KVS-E2EE/1 bundle sig"
	wrapLabel = "KVS-E2EE/1 wrap"
)

// RecipientEntrySize is the bundle bytes one recipient of the kind costs:
// 94 for x25519 and 1182 for xwing.
func RecipientEntrySize(kem KEM) int {
	enc := X25519EncSize
	if kem == KEMXWing {
		enc = XWingEncSize
	}
	return 2 + 8 + 2 + enc + 2 + WrappedSecretSize
}

// BundleSize is the size of the bundle for stream and recipients.
func BundleSize(stream string, recipients []*PublicKey) int {
	n := BundleFixedSize + len(stream)
	for _, r := range recipients {
		n += RecipientEntrySize(r.kem)
	}
	return n
}

// WrappedKey is one recipient's entry in a bundle.
type WrappedKey struct {
	KEM        KEM
	Recipient  RecipientID
	Enc        []byte // HPKE encapsulated key
	Ciphertext []byte // HPKE-sealed epoch secret
}

// Bundle is a parsed key bundle. Its slices alias the parsed bytes.
type Bundle struct {
	Version    int // 2, or 1 for a KVK1 bundle
	Suite      Suite
	EpochID    uint32
	FirstPTS   uint64 // the epoch's first Cluster timecode
	Stream     string
	Signer     SignerID
	HeadDigest [HeadDigestSize]byte // zero in a version 1 bundle
	Recipients []WrappedKey
	Signature  []byte
	raw        []byte
}

// Bytes returns the bundle's encoding (aliasing the parsed input).
func (b *Bundle) Bytes() []byte { return b.raw }

func (b *Bundle) String() string {
	return fmt.Sprintf("key bundle v%d epoch=%#08x suite=%v stream=%q signer=%v recipients=%d first_pts=%d",
		b.Version, b.EpochID, b.Suite, b.Stream, b.Signer, len(b.Recipients), b.FirstPTS)
}

func bundleErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBundleMalformed}, args...)...)
}

// ParseBundle parses a key bundle without verifying it (see Verify).
// Errors: ErrBundleMalformed, ErrUnsupported (unknown magic or suite).
func ParseBundle(raw []byte) (*Bundle, error) {
	if len(raw) < len(BundleMagic) {
		return nil, bundleErr("%d bytes, too short for the magic", len(raw))
	}
	version := 2
	switch string(raw[:4]) {
	case BundleMagic:
	case BundleMagicV1:
		version = 1
	default:
		return nil, fmt.Errorf("%w: magic %q, want %q (or %q)", ErrUnsupported, raw[:4], BundleMagic, BundleMagicV1)
	}
	p := raw[4:]
	need := func(n int, what string) error {
		if len(p) < n {
			return bundleErr("truncated at %s: need %d bytes at offset %d, have %d", what, n, len(raw)-len(p), len(p))
		}
		return nil
	}
	if err := need(2+4+8+2, "header"); err != nil {
		return nil, err
	}
	b := &Bundle{raw: raw, Version: version}
	b.Suite = Suite(binary.BigEndian.Uint16(p))
	if b.Suite != SuiteAES128GCM && b.Suite != SuiteAES256GCM {
		return nil, fmt.Errorf("%w: cipher suite %v (KVS-E2EE v1 uses 0x0004 or 0x0005)", ErrUnsupported, b.Suite)
	}
	b.EpochID = binary.BigEndian.Uint32(p[2:])
	b.FirstPTS = binary.BigEndian.Uint64(p[6:])
	sl := int(binary.BigEndian.Uint16(p[14:]))
	p = p[16:]
	if err := need(sl+8+1, "stream name"); err != nil {
		return nil, err
	}
	b.Stream = string(p[:sl])
	copy(b.Signer[:], p[sl:])
	p = p[sl+8:]
	if version == 2 {
		if err := need(HeadDigestSize+1, "head digest"); err != nil {
			return nil, err
		}
		copy(b.HeadDigest[:], p)
		p = p[HeadDigestSize:]
	}
	n := int(p[0])
	p = p[1:]
	if b.EpochID == 0 {
		return nil, bundleErr("epoch id 0")
	}
	if n == 0 {
		return nil, bundleErr("no recipients")
	}
	b.Recipients = make([]WrappedKey, n)
	for i := range b.Recipients {
		w := &b.Recipients[i]
		if err := need(2+8+2, fmt.Sprintf("recipient %d", i)); err != nil {
			return nil, err
		}
		w.KEM = KEM(binary.BigEndian.Uint16(p))
		copy(w.Recipient[:], p[2:10])
		el := int(binary.BigEndian.Uint16(p[10:]))
		p = p[12:]
		if err := need(el+2, fmt.Sprintf("recipient %d enc", i)); err != nil {
			return nil, err
		}
		w.Enc = p[:el:el]
		cl := int(binary.BigEndian.Uint16(p[el:]))
		p = p[el+2:]
		if err := need(cl, fmt.Sprintf("recipient %d ciphertext", i)); err != nil {
			return nil, err
		}
		w.Ciphertext = p[:cl:cl]
		p = p[cl:]
		if cl != WrappedSecretSize {
			return nil, bundleErr("recipient %d: wrapped secret of %d bytes, want %d", i, cl, WrappedSecretSize)
		}
		switch {
		case w.KEM == KEMX25519 && el != X25519EncSize, w.KEM == KEMXWing && el != XWingEncSize:
			return nil, bundleErr("recipient %d: %v enc of %d bytes", i, w.KEM, el)
		}
	}
	if len(p) != ed25519.SignatureSize {
		return nil, bundleErr("%d bytes after the recipients, want the %d-byte signature", len(p), ed25519.SignatureSize)
	}
	b.Signature = p
	return b, nil
}

func sigMessage(signed []byte) []byte {
	return append([]byte(sigLabel), signed...)
}

// Verify checks the signature against the pinned device key whose id is
// the bundle's signer id. Errors: ErrBundleSignature.
func (b *Bundle) Verify(pinned []*DeviceKey) error {
	for _, d := range pinned {
		if d.id != b.Signer {
			continue
		}
		if !ed25519.Verify(d.pk, sigMessage(b.raw[:len(b.raw)-ed25519.SignatureSize]), b.Signature) {
			return fmt.Errorf("%w: epoch=%#08x signer=%v: signature does not verify", ErrBundleSignature, b.EpochID, b.Signer)
		}
		return nil
	}
	return fmt.Errorf("%w: epoch=%#08x signer=%v is not a pinned device key", ErrBundleSignature, b.EpochID, b.Signer)
}

// verifyRaw returns the pinned device whose key verifies the signature at
// the end of raw, or nil. It reads no field of raw.
func verifyRaw(raw []byte, pinned []*DeviceKey) *DeviceKey {
	if len(raw) < ed25519.SignatureSize {
		return nil
	}
	msg := sigMessage(raw[:len(raw)-ed25519.SignatureSize])
	for _, d := range pinned {
		if ed25519.Verify(d.pk, msg, raw[len(raw)-ed25519.SignatureSize:]) {
			return d
		}
	}
	return nil
}

func wrapInfo(suite Suite, epochID uint32, stream string, signer SignerID) []byte {
	info := make([]byte, 0, len(wrapLabel)+2+4+2+len(stream)+8)
	info = append(info, wrapLabel...)
	info = binary.BigEndian.AppendUint16(info, uint16(suite))
	info = binary.BigEndian.AppendUint32(info, epochID)
	info = appendL16(info, []byte(stream))
	return append(info, signer[:]...)
}

// sealBundle wraps E to every recipient and signs the result.
// A nil head writes a version 1 bundle (for tests of the consumer's
// handling of them; the Encryptor always passes one).
func sealBundle(suite Suite, epochID uint32, firstPTS uint64, stream string, head *[HeadDigestSize]byte, sk *SigningKey, recipients []*PublicKey, secret []byte) ([]byte, error) {
	if len(recipients) == 0 {
		return nil, ErrNoRecipients
	}
	if len(recipients) > MaxRecipients {
		return nil, fmt.Errorf("e2ee: %d recipients, at most %d", len(recipients), MaxRecipients)
	}
	info := wrapInfo(suite, epochID, stream, sk.pub.id)
	out := make([]byte, 0, len(sigLabel)+BundleSize(stream, recipients))
	out = append(out, sigLabel...)
	if head == nil {
		out = append(out, BundleMagicV1...)
	} else {
		out = append(out, BundleMagic...)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(suite))
	out = binary.BigEndian.AppendUint32(out, epochID)
	out = binary.BigEndian.AppendUint64(out, firstPTS)
	out = appendL16(out, []byte(stream))
	out = append(out, sk.pub.id[:]...)
	if head != nil {
		out = append(out, head[:]...)
	}
	out = append(out, byte(len(recipients)))
	for _, r := range recipients {
		enc, s, err := hpke.NewSender(r.pk, hpke.HKDFSHA256(), hpke.AES256GCM(), info)
		if err != nil {
			return nil, fmt.Errorf("e2ee: wrapping to %v: %w", r, err)
		}
		ct, err := s.Seal(nil, secret)
		if err != nil {
			return nil, fmt.Errorf("e2ee: wrapping to %v: %w", r, err)
		}
		out = binary.BigEndian.AppendUint16(out, uint16(r.kem))
		out = append(out, r.id[:]...)
		out = appendL16(out, enc)
		out = appendL16(out, ct)
	}
	out = append(out, ed25519.Sign(sk.sk, out)...)
	return bytes.Clone(out[len(sigLabel):]), nil
}

// unwrap opens our wrapped secret. Errors: ErrNotRecipient, ErrUnwrap.
func (b *Bundle) unwrap(keys []*PrivateKey) ([]byte, error) {
	for _, w := range b.Recipients {
		for _, k := range keys {
			if k.pub.id != w.Recipient || k.pub.kem != w.KEM {
				continue
			}
			r, err := hpke.NewRecipient(w.Enc, k.sk, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(b.Suite, b.EpochID, b.Stream, b.Signer))
			if err != nil {
				return nil, fmt.Errorf("%w: epoch=%#08x recipient=%v: bad encapsulation", ErrUnwrap, b.EpochID, k.pub.id)
			}
			secret, err := r.Open(nil, w.Ciphertext)
			if err != nil || len(secret) != EpochSecretSize {
				return nil, fmt.Errorf("%w: epoch=%#08x recipient=%v: authentication failed", ErrUnwrap, b.EpochID, k.pub.id)
			}
			return secret, nil
		}
	}
	return nil, fmt.Errorf("%w: epoch=%#08x has %d recipients, none of them ours", ErrNotRecipient, b.EpochID, len(b.Recipients))
}
