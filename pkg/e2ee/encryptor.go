package e2ee

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// DefaultRotationInterval is how long an epoch lasts at most (SPEC.md §3):
// an hour keeps every key far below AEAD usage limits.
const DefaultRotationInterval = time.Hour

// counterHeadroom: RotationDue turns true this many frames before a
// track's counter would run out, so the producer rotates at a Cluster start
// long before Seal has to fail.
const counterHeadroom = 1 << 24

// EncryptorConfig configures the producer side.
type EncryptorConfig struct {
	// Stream is the KVS stream name, exactly as used in PutMedia. Required.
	Stream string
	// Suite is the SFrame cipher suite. It defaults to SuiteAES256GCM;
	// SuiteAES128GCM is the only other choice.
	Suite Suite
	// SigningKey is the device's Ed25519 key that signs every bundle.
	// Required.
	SigningKey *SigningKey
	// Recipients receive every epoch secret. At least one is required:
	// kvsgo never falls back to plaintext.
	Recipients []*PublicKey
	// RotationInterval bounds an epoch's life (see RotationDue). It
	// defaults to DefaultRotationInterval.
	RotationInterval time.Duration
	// Now is the clock for RotationInterval. It defaults to time.Now.
	Now func() time.Time
	// Rand is the source of epoch secrets and ids. It defaults to
	// crypto/rand.Reader; tests may replace it, production must not.
	Rand io.Reader
}

// EpochInfo describes an epoch without its secret, for bus messages and
// logs.
type EpochInfo struct {
	ID         uint32
	FirstPTS   uint64
	Suite      Suite
	Recipients []RecipientID
	BundleSize int
}

func (i EpochInfo) String() string {
	return fmt.Sprintf("epoch=%#08x first_pts=%d suite=%v recipients=%v bundle=%dB", i.ID, i.FirstPTS, i.Suite, i.Recipients, i.BundleSize)
}

type sendEpoch struct {
	info    EpochInfo
	secret  []byte
	bundle  []byte
	started time.Time
	keys    [MaxTrack + 1]*Key
	next    [MaxTrack + 1]uint64 // next CTR per track
}

// Encryptor is the producer side of KVS-E2EE: it starts epochs (a fresh
// random secret, wrapped to every recipient in a signed bundle) and seals
// frames under the current epoch, each with its own counter.
//
// The streaming core calls NewEpoch at start and whenever RotationDue says
// so, always at a Cluster start; it writes Bundle() as the first block of
// every Cluster; and it calls Seal once per frame, before the frame enters
// any buffer, so that retries resend the stored ciphertext and no
// (key, nonce) is ever used twice. Nothing of an epoch is persisted: a
// restarted process starts a new epoch with a new random secret.
//
// An Encryptor is not safe for concurrent use; the core's owner goroutine
// uses it. Seal allocates nothing once each track's key exists (the first
// frame of a track in an epoch derives it).
type Encryptor struct {
	cfg     EncryptorConfig
	epoch   *sendEpoch
	prevID  uint32
	changed bool
	head    [HeadDigestSize]byte // of the segment head set last
	epHead  [HeadDigestSize]byte // of the current epoch's bundle
	v1      bool                 // write version 1 bundles (tests only)
	meta    [MetadataLen]byte
}

// NewEncryptor validates cfg and fills its defaults. It starts no epoch.
func NewEncryptor(cfg EncryptorConfig) (*Encryptor, error) {
	if cfg.Suite == 0 {
		cfg.Suite = DefaultSuite
	}
	if cfg.RotationInterval == 0 {
		cfg.RotationInterval = DefaultRotationInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	switch {
	case cfg.Suite != SuiteAES256GCM && cfg.Suite != SuiteAES128GCM:
		return nil, fmt.Errorf("%w: %v (KVS-E2EE uses AES_256_GCM_SHA512_128 or AES_128_GCM_SHA256_128)", ErrSuite, cfg.Suite)
	case cfg.Stream == "":
		return nil, fmt.Errorf("e2ee: a stream name is required")
	case len(cfg.Stream) > MaxStreamName:
		return nil, fmt.Errorf("e2ee: stream name of %d bytes longer than %d", len(cfg.Stream), MaxStreamName)
	case cfg.SigningKey == nil:
		return nil, fmt.Errorf("e2ee: a device signing key is required")
	case cfg.RotationInterval < 0:
		return nil, fmt.Errorf("e2ee: negative rotation interval %v", cfg.RotationInterval)
	}
	e := &Encryptor{cfg: cfg, head: Head{}.Digest()}
	if err := e.SetRecipients(cfg.Recipients); err != nil {
		return nil, err
	}
	e.changed = false
	return e, nil
}

// SetRecipients replaces the recipient set. It takes effect at the next
// NewEpoch, which RotationDue then asks for.
func (e *Encryptor) SetRecipients(rs []*PublicKey) error {
	if len(rs) == 0 {
		return ErrNoRecipients
	}
	if len(rs) > MaxRecipients {
		return fmt.Errorf("e2ee: %d recipients, at most %d", len(rs), MaxRecipients)
	}
	seen := map[RecipientID]bool{}
	for _, r := range rs {
		if r == nil {
			return fmt.Errorf("%w: nil recipient", ErrKeyFormat)
		}
		if seen[r.id] {
			return fmt.Errorf("%w: recipient %v listed twice", ErrKeyFormat, r.id)
		}
		seen[r.id] = true
	}
	e.cfg.Recipients = append([]*PublicKey(nil), rs...)
	e.changed = true
	return nil
}

// SetHead declares the segment head the following frames are presented
// with (timecode scale and A/V tracks as written, without the key track).
// Its digest goes into every bundle from the next NewEpoch on; a head that
// differs from the current epoch's makes RotationDue true, so the caller
// starts a new epoch with the new segment head. Until it is called the
// head is the empty Head.
func (e *Encryptor) SetHead(h Head) { e.head = h.Digest() }

// NewEpoch ends the current epoch and starts a new one whose first Cluster
// has timecode firstPTS: it draws a fresh 32-byte secret and a random
// non-zero epoch id different from the previous one, wraps the secret to
// every recipient and signs the bundle. It returns the bundle, which the
// caller writes as the key-track block of every Cluster of the epoch.
func (e *Encryptor) NewEpoch(firstPTS uint64) ([]byte, error) {
	secret := make([]byte, EpochSecretSize)
	if _, err := io.ReadFull(e.cfg.Rand, secret); err != nil {
		return nil, fmt.Errorf("e2ee: drawing an epoch secret: %w", err)
	}
	var id uint32
	for id == 0 || id == e.prevID {
		var b [4]byte
		if _, err := io.ReadFull(e.cfg.Rand, b[:]); err != nil {
			return nil, fmt.Errorf("e2ee: drawing an epoch id: %w", err)
		}
		id = binary.BigEndian.Uint32(b[:])
	}
	head := &e.head
	if e.v1 {
		head = nil
	}
	bundle, err := sealBundle(e.cfg.Suite, id, firstPTS, e.cfg.Stream, head, e.cfg.SigningKey, e.cfg.Recipients, secret)
	if err != nil {
		clear(secret)
		return nil, err
	}
	e.Close()
	ep := &sendEpoch{secret: secret, bundle: bundle, started: e.cfg.Now()}
	ep.info = EpochInfo{ID: id, FirstPTS: firstPTS, Suite: e.cfg.Suite, BundleSize: len(bundle)}
	for _, r := range e.cfg.Recipients {
		ep.info.Recipients = append(ep.info.Recipients, r.id)
	}
	e.epoch, e.prevID, e.changed, e.epHead = ep, id, false, e.head
	return bundle, nil
}

// Bundle returns the current epoch's key bundle (nil before NewEpoch). The
// caller must not modify it.
func (e *Encryptor) Bundle() []byte {
	if e.epoch == nil {
		return nil
	}
	return e.epoch.bundle
}

// Epoch describes the current epoch (the zero EpochInfo before NewEpoch).
func (e *Encryptor) Epoch() EpochInfo {
	if e.epoch == nil {
		return EpochInfo{}
	}
	return e.epoch.info
}

// RotationDue reports whether the caller should start a new epoch at the
// next Cluster: there is none yet, the recipients changed, the rotation
// interval elapsed, the segment head changed (SetHead), or a track's
// counter is close to MaxCounter.
func (e *Encryptor) RotationDue() bool {
	ep := e.epoch
	if ep == nil || e.changed || e.head != e.epHead || e.cfg.Now().Sub(ep.started) >= e.cfg.RotationInterval {
		return true
	}
	for _, n := range ep.next {
		if n > MaxCounter-counterHeadroom {
			return true
		}
	}
	return false
}

// Seal appends the SFrame ciphertext of one frame to dst: header(KID, CTR)
// || AES-GCM(access unit) with metadata (track, keyframe flag, pts) as
// associated data, and returns it. track is the Matroska TrackNumber
// (1..15), keyframe the SimpleBlock key flag, and pts the Cluster timecode
// plus the block's relative timecode (TimestampScale units). Each call uses
// the track's next counter; never call it twice for one frame. dst must not
// overlap plaintext. Errors: ErrNoEpoch, ErrTrack, ErrCounterExhausted.
func (e *Encryptor) Seal(dst []byte, track uint8, keyframe bool, pts uint64, plaintext []byte) ([]byte, error) {
	ep := e.epoch
	if ep == nil {
		return nil, ErrNoEpoch
	}
	if track == 0 || track > MaxTrack {
		return nil, fmt.Errorf("%w: %d", ErrTrack, track)
	}
	k := ep.keys[track]
	if k == nil {
		base, err := DeriveBaseKey(ep.secret, e.cfg.Stream, ep.info.ID, track, e.cfg.Suite)
		if err != nil {
			return nil, err
		}
		k, err = NewKey(e.cfg.Suite, base, KID(ep.info.ID, track))
		clear(base)
		if err != nil {
			return nil, err
		}
		ep.keys[track] = k
	}
	ctr := ep.next[track]
	if ctr > MaxCounter {
		return nil, fmt.Errorf("%w: epoch=%#08x track=%d", ErrCounterExhausted, ep.info.ID, track)
	}
	ep.next[track] = ctr + 1
	return k.Seal(dst, ctr, AppendMetadata(e.meta[:0], track, keyframe, pts), plaintext), nil
}

// Close forgets the current epoch and clears its secret. Seal fails with
// ErrNoEpoch until the next NewEpoch.
func (e *Encryptor) Close() {
	if e.epoch != nil {
		clear(e.epoch.secret)
		e.epoch = nil
	}
}

func (e Encryptor) String() string {
	return fmt.Sprintf("e2ee encryptor stream=%q suite=%v recipients=%d", e.cfg.Stream, e.cfg.Suite, len(e.cfg.Recipients))
}

// Format prints String for every verb, so that no formatting can reveal
// a secret.
func (e Encryptor) Format(f fmt.State, _ rune) { io.WriteString(f, e.String()) }
