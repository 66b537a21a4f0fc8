package e2ee

import (
	"crypto/sha256"
	"fmt"
	"io"
)

// DefaultMaxEpochs is how many epochs a Decryptor keeps keys for: enough for
// fragments of the previous epochs arriving late or out of order
// (GetMediaForFragmentList), bounded so a hostile stream cannot grow memory.
// An epoch that falls out is not forgotten for replay (SPEC.md §7.2): no
// epoch starting at or before it is accepted again.
const DefaultMaxEpochs = 8

// maxFailedBundles bounds the cache of bundles that failed, so a repeated
// bad bundle costs one hash, not a signature check and an HPKE open.
const maxFailedBundles = 64

// DecryptorConfig configures the consumer side.
type DecryptorConfig struct {
	// Stream is the stream name the consumer asked GetMedia for. Bundles for
	// another stream fail with ErrWrongStream. Required.
	Stream string
	// Devices are the pinned device public keys; a bundle must be signed by
	// one of them. Required.
	Devices []*DeviceKey
	// Keys are our recipient private keys. Required.
	Keys []*PrivateKey
	// MaxEpochs bounds the epochs kept. It defaults to DefaultMaxEpochs.
	MaxEpochs int
	// Warn receives warnings that do not stop decryption: *FrameGap (ErrGap)
	// and *StaleEpochError (ErrStaleEpoch). It may be nil.
	Warn func(error)
	// AcceptV1Bundles accepts version 1 (KVK1) key bundles, which do not
	// authenticate the segment head: their frames are presented with a
	// head that storage may have rewritten (another TimecodeScale,
	// CodecPrivate), and each such epoch is reported to Warn as
	// ErrHeadUnauthenticated. Without it they fail with ErrUnsupported.
	AcceptV1Bundles bool
	// State, if set, is the replay state an earlier Decryptor of the same
	// consumer saved (Decryptor.State): frames it accepted are refused as
	// replays after a restart too. It holds no secret.
	State *DecryptorState
}

type recvEpoch struct {
	id       uint32
	signer   SignerID
	hash     [32]byte
	suite    Suite
	firstPTS uint64
	head     [HeadDigestSize]byte
	v1       bool // the head is not authenticated
	secret   []byte
	keys     [MaxTrack + 1]*Key
	last     [MaxTrack + 1]uint64
	seen     [MaxTrack + 1]bool
}

// Decryptor is the consumer side of KVS-E2EE (SPEC.md §7): it accepts
// key bundles after verifying them and opens frames, checking track, epoch,
// replay and authenticity, each failure with its own error. Feed it the
// key-track block of every Cluster (AddBundle) and then the Cluster's A/V
// blocks (Open), in stream order.
//
// A Decryptor is not safe for concurrent use. Open allocates nothing once
// the track's key exists.
type Decryptor struct {
	cfg     DecryptorConfig
	epochs  map[uint32]*recvEpoch
	order   []uint32 // epoch ids, oldest first
	hashes  map[[32]byte]uint32
	failed  map[[32]byte]error
	failedE map[uint32]error // root cause per epoch id whose bundle failed
	// forgotten is, per device, the latest first_pts of an epoch this
	// Decryptor dropped (evicted or replaced): a bundle of that device
	// starting at or before it may be one whose frames were output
	// already, and is refused (ErrReplay). One entry per pinned device.
	forgotten map[SignerID]uint64
	// restored are the epochs a saved State held, by bundle digest: their
	// replay counters apply when their bundle comes again. At most
	// MaxEpochs, never added to after NewDecryptor.
	restored map[[32]byte]EpochState
	current  *recvEpoch
	head     [HeadDigestSize]byte // of the segment head declared (SetHead)
	meta     [MetadataLen]byte
}

// NewDecryptor validates cfg.
func NewDecryptor(cfg DecryptorConfig) (*Decryptor, error) {
	if cfg.MaxEpochs <= 0 {
		cfg.MaxEpochs = DefaultMaxEpochs
	}
	switch {
	case cfg.Stream == "":
		return nil, fmt.Errorf("e2ee: the expected stream name is required")
	case len(cfg.Devices) == 0:
		return nil, fmt.Errorf("e2ee: at least one pinned device key is required")
	case len(cfg.Keys) == 0:
		return nil, fmt.Errorf("e2ee: at least one recipient private key is required")
	}
	d := &Decryptor{cfg: cfg, epochs: map[uint32]*recvEpoch{}, hashes: map[[32]byte]uint32{},
		failed: map[[32]byte]error{}, failedE: map[uint32]error{}, forgotten: map[SignerID]uint64{}, restored: map[[32]byte]EpochState{},
		head: Head{}.Digest()}
	if cfg.State != nil {
		if err := d.restore(cfg.State); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// AddBundle processes the key-track block of a Cluster: parse (ErrBundleMalformed,
// ErrUnsupported), verify the signature against the pinned device keys
// before using any field (ErrBundleSignature), check the stream
// (ErrWrongStream), refuse an epoch that starts at or before one of its
// device's epochs this Decryptor no longer holds (ErrReplay), find our
// recipient entry (ErrNotRecipient) and unwrap the epoch secret
// (ErrUnwrap). A byte-identical copy of a bundle already processed costs
// one SHA-256 and returns the same result. A known epoch id with different
// bytes replaces that epoch (whose start then counts as no longer held). It
// returns the epoch's information.
func (d *Decryptor) AddBundle(raw []byte) (EpochInfo, error) {
	h := sha256.Sum256(raw)
	if id, ok := d.hashes[h]; ok {
		if ep := d.epochs[id]; ep != nil && ep.hash == h {
			d.setCurrent(ep)
			return ep.info(), nil
		}
	}
	if err, ok := d.failed[h]; ok {
		return EpochInfo{}, err
	}
	info, err := d.addBundle(raw, h)
	if err != nil {
		if len(d.failed) >= maxFailedBundles {
			clear(d.failed)
		}
		d.failed[h] = err
	}
	return info, err
}

func (d *Decryptor) addBundle(raw []byte, h [32]byte) (EpochInfo, error) {
	// Verify before parsing anything but the magic: no field of an
	// unauthenticated bundle is used, so any flipped byte after the magic
	// is ErrBundleSignature.
	if len(raw) >= len(BundleMagic) {
		switch m := string(raw[:len(BundleMagic)]); {
		case m == BundleMagicV1 && !d.cfg.AcceptV1Bundles:
			return EpochInfo{}, fmt.Errorf("%w: a version 1 bundle (%q), which does not authenticate the segment head; accepting it needs AcceptV1Bundles", ErrUnsupported, m)
		case m != BundleMagic && m != BundleMagicV1:
			return EpochInfo{}, fmt.Errorf("%w: magic %q, want %q", ErrUnsupported, m, BundleMagic)
		}
	}
	if len(raw) < BundleFixedSizeV1 {
		return EpochInfo{}, bundleErr("%d bytes, shorter than the smallest bundle (%d)", len(raw), BundleFixedSizeV1)
	}
	signer := verifyRaw(raw, d.cfg.Devices)
	if signer == nil {
		return EpochInfo{}, fmt.Errorf("%w: no pinned device key (%d pinned) verifies it", ErrBundleSignature, len(d.cfg.Devices))
	}
	b, err := ParseBundle(raw)
	if err != nil {
		return EpochInfo{}, err
	}
	if b.Signer != signer.id {
		return EpochInfo{}, fmt.Errorf("%w: signed by device %v but names signer %v", ErrBundleSignature, signer.id, b.Signer)
	}
	if b.Stream != d.cfg.Stream {
		return EpochInfo{}, fmt.Errorf("%w: bundle epoch=%#08x is for stream %q, expected %q", ErrWrongStream, b.EpochID, b.Stream, d.cfg.Stream)
	}
	mark, restored := d.restored[h]
	if hw, ok := d.forgotten[b.Signer]; ok && b.FirstPTS <= hw && !restored {
		err := fmt.Errorf("%w: epoch=%#08x starts at pts %d, not after an epoch of device %v this consumer no longer holds (pts %d): its frames may have been output already",
			ErrReplay, b.EpochID, b.FirstPTS, b.Signer, hw)
		d.failedE[b.EpochID] = err
		if len(d.failedE) > maxFailedBundles {
			clear(d.failedE)
		}
		return EpochInfo{}, err
	}
	secret, err := b.unwrap(d.cfg.Keys)
	if err != nil {
		d.failedE[b.EpochID] = err
		if len(d.failedE) > maxFailedBundles {
			clear(d.failedE)
		}
		return EpochInfo{}, err
	}
	delete(d.failedE, b.EpochID)
	if old := d.epochs[b.EpochID]; old != nil {
		d.drop(old)
	}
	ep := &recvEpoch{id: b.EpochID, signer: b.Signer, hash: h, suite: b.Suite, firstPTS: b.FirstPTS, head: b.HeadDigest, v1: b.Version == 1, secret: secret}
	if ep.v1 && d.cfg.Warn != nil {
		d.cfg.Warn(fmt.Errorf("%w: epoch=%#08x", ErrHeadUnauthenticated, ep.id))
	}
	if restored {
		delete(d.restored, h)
		for t, c := range mark.Last {
			if t >= 1 && t <= MaxTrack && c != nil {
				ep.seen[t], ep.last[t] = true, *c
			}
		}
	}
	d.epochs[ep.id] = ep
	d.hashes[h] = ep.id
	d.order = append(d.order, ep.id)
	for len(d.order) > d.cfg.MaxEpochs {
		d.drop(d.epochs[d.order[0]])
	}
	d.setCurrent(ep)
	return ep.info(), nil
}

func (ep *recvEpoch) info() EpochInfo {
	return EpochInfo{ID: ep.id, FirstPTS: ep.firstPTS, Suite: ep.suite}
}

func (d *Decryptor) setCurrent(ep *recvEpoch) {
	if cur := d.current; cur != nil && cur != ep && ep.firstPTS < cur.firstPTS && d.cfg.Warn != nil {
		d.cfg.Warn(&StaleEpochError{EpochID: ep.id, FirstPTS: ep.firstPTS, CurrentPTS: cur.firstPTS})
	}
	d.current = ep
}

// drop forgets an epoch (evicted, or replaced by another with its id),
// keeping its start in the device's high-water mark so that it is never
// accepted afresh.
func (d *Decryptor) drop(ep *recvEpoch) {
	d.forget(ep.signer, ep.firstPTS)
	clear(ep.secret)
	delete(d.epochs, ep.id)
	delete(d.hashes, ep.hash)
	for i, id := range d.order {
		if id == ep.id {
			d.order = append(d.order[:i], d.order[i+1:]...)
			break
		}
	}
	if d.current == ep {
		d.current = nil
	}
}

func (d *Decryptor) forget(signer SignerID, firstPTS uint64) {
	if hw, ok := d.forgotten[signer]; !ok || firstPTS > hw {
		d.forgotten[signer] = firstPTS
	}
}

// Reset forgets every epoch and all replay state (the counters last
// accepted, the epochs forgotten, a restored State), as a new Decryptor
// would: call it when the application deliberately reads footage again, as
// when it seeks back or starts a new GetMedia session over a range it has
// already seen. The next bundle of each epoch is verified and unwrapped
// again.
func (d *Decryptor) Reset() {
	for _, ep := range d.epochs {
		clear(ep.secret)
	}
	clear(d.epochs)
	clear(d.hashes)
	d.order = d.order[:0]
	clear(d.forgotten)
	clear(d.restored)
	clear(d.failed)
	clear(d.failedE)
	d.current = nil
}

// SetHead declares the segment head the following frames are presented
// with, as read (timecode scale and A/V tracks, without the key track):
// Open refuses frames of an epoch whose bundle was signed for another
// head (ErrHeadMismatch). Call it at every segment start. Until it is
// called the head is the empty Head, which is what an Encryptor without
// SetHead signs.
func (d *Decryptor) SetHead(h Head) { d.head = h.Digest() }

// Open authenticates and decrypts one A/V block payload and appends the
// access unit to dst. track, keyframe and pts come from the block as read:
// TrackNumber, SimpleBlock key flag, Cluster timecode + relative timecode.
// Errors, in the order checked: ErrMalformed, ErrTrackMismatch,
// ErrMissingKey (its message names the bundle's root cause when the bundle
// failed), ErrHeadMismatch, ErrReplay, ErrAuth. On success a counter jump is passed to
// Warn as a *FrameGap.
func (d *Decryptor) Open(dst []byte, track uint8, keyframe bool, pts uint64, payload []byte) ([]byte, error) {
	kid, ctr, n, err := ParseHeader(payload)
	if err != nil {
		return nil, err
	}
	if track == 0 || track > MaxTrack || kid&0xf != uint64(track) {
		return nil, fmt.Errorf("%w: kid=%#x is for track %d, block is on track %d", ErrTrackMismatch, kid, kid&0xf, track)
	}
	if kid>>4 > 0xffffffff {
		return nil, fmt.Errorf("%w: kid=%#x is not a KVS-E2EE epoch", ErrMissingKey, kid)
	}
	id := uint32(kid >> 4)
	ep := d.epochs[id]
	if ep == nil {
		if cause := d.failedE[id]; cause != nil {
			return nil, fmt.Errorf("%w: epoch=%#08x (its bundle failed: %v)", ErrMissingKey, id, cause)
		}
		return nil, fmt.Errorf("%w: epoch=%#08x: no bundle seen", ErrMissingKey, id)
	}
	if !ep.v1 && ep.head != d.head {
		return nil, fmt.Errorf("%w: epoch=%#08x was signed for another timecode scale, codec, CodecPrivate or track set than this segment's", ErrHeadMismatch, id)
	}
	if ep.seen[track] && ctr <= ep.last[track] {
		return nil, fmt.Errorf("%w: kid=%#x ctr=%d, last accepted %d", ErrReplay, kid, ctr, ep.last[track])
	}
	k := ep.keys[track]
	if k == nil {
		base, err := DeriveBaseKey(ep.secret, d.cfg.Stream, id, track, ep.suite)
		if err != nil {
			return nil, err
		}
		k, err = NewKey(ep.suite, base, kid)
		clear(base)
		if err != nil {
			return nil, err
		}
		ep.keys[track] = k
	}
	out, _, err := k.open(dst, AppendMetadata(d.meta[:0], track, keyframe, pts), payload, ctr, n)
	if err != nil {
		return nil, err
	}
	if ep.seen[track] && ctr > ep.last[track]+1 && d.cfg.Warn != nil {
		d.cfg.Warn(&FrameGap{KID: kid, From: ep.last[track] + 1, To: ctr - 1})
	}
	ep.seen[track], ep.last[track] = true, ctr
	return out, nil
}

func (d Decryptor) String() string {
	return fmt.Sprintf("e2ee decryptor stream=%q devices=%d keys=%d epochs=%d", d.cfg.Stream, len(d.cfg.Devices), len(d.cfg.Keys), len(d.epochs))
}

// Format prints String for every verb, so that no formatting can reveal
// a secret.
func (d Decryptor) Format(f fmt.State, _ rune) { io.WriteString(f, d.String()) }
