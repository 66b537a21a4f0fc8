package e2ee

import (
	"errors"
	"fmt"
)

// Errors of the consumer procedure (SPEC.md §7). Each cause has its own
// sentinel; errors returned by this package wrap exactly one of them (test
// with errors.Is) and add context that never includes secret material.
var (
	// ErrBundleMalformed: a key bundle could not be parsed.
	ErrBundleMalformed = errors.New("e2ee: malformed key bundle")
	// ErrUnsupported: a key bundle with an unknown magic (version) or cipher
	// suite.
	ErrUnsupported = errors.New("e2ee: unsupported key bundle version or cipher suite")
	// ErrBundleSignature: the bundle's signature does not verify against the
	// pinned device key for its signer id, or the signer is not pinned.
	ErrBundleSignature = errors.New("e2ee: key bundle signature invalid or signer not pinned")
	// ErrWrongStream: the bundle is for another stream than the expected one.
	ErrWrongStream = errors.New("e2ee: key bundle is for another stream")
	// ErrNotRecipient: none of our private keys is among the bundle's
	// recipients; we are not authorised for this epoch.
	ErrNotRecipient = errors.New("e2ee: not a recipient of this epoch")
	// ErrUnwrap: HPKE could not open our wrapped epoch secret (wrong private
	// key or corrupted wrap).
	ErrUnwrap = errors.New("e2ee: cannot unwrap the epoch secret")

	// ErrMalformed: a frame's SFrame header cannot be parsed, or the frame is
	// shorter than its header and tag.
	ErrMalformed = errors.New("e2ee: malformed SFrame ciphertext")
	// ErrTrackMismatch: the frame's KID names another track than the block's.
	ErrTrackMismatch = errors.New("e2ee: frame KID belongs to another track")
	// ErrMissingKey: the frame's epoch has no key (its bundle was not seen or
	// could not be used).
	ErrMissingKey = errors.New("e2ee: no key for the frame's epoch")
	// ErrReplay: the frame's counter is not above the last accepted one for
	// its KID (a duplicated, replayed or reordered frame).
	ErrReplay = errors.New("e2ee: replayed or reordered frame")
	// ErrHeadMismatch: the frame's epoch was signed for another segment
	// head (timecode scale, tracks, codecs, CodecPrivate) than the one it
	// is read with: the head was rewritten in storage, or the frame was
	// moved into another segment.
	ErrHeadMismatch = errors.New("e2ee: segment head differs from the one the camera signed")
	// ErrAuth: the frame failed authentication (tampered frame, or a context
	// mismatch such as a rewritten timecode, keyframe flag or stream).
	ErrAuth = errors.New("e2ee: frame authentication failed")

	// ErrGap is matched by *FrameGap: frames of a KID were skipped (lost or
	// withheld). It is a warning: the frame that revealed it was opened.
	ErrGap = errors.New("e2ee: frames missing")
	// ErrStaleEpoch is matched by *StaleEpochError: a new epoch starts before
	// the current one, i.e. old footage is being served as new. A warning.
	ErrStaleEpoch = errors.New("e2ee: epoch older than the current one")

	// ErrHeadUnauthenticated is a warning: a version 1 bundle was accepted
	// (DecryptorConfig.AcceptV1Bundles), so the segment head its frames are
	// presented with is not authenticated.
	ErrHeadUnauthenticated = errors.New("e2ee: segment head not authenticated (version 1 key bundle)")

	// ErrNoEpoch: Seal was called before the first NewEpoch.
	ErrNoEpoch = errors.New("e2ee: no epoch started")
	// ErrTrack: a track number outside 1..15.
	ErrTrack = errors.New("e2ee: track number outside 1..15")
	// ErrCounterExhausted: an epoch's track counter reached MaxCounter; start
	// a new epoch.
	ErrCounterExhausted = errors.New("e2ee: frame counter exhausted, a new epoch is needed")
	// ErrNoRecipients: encryption is configured with no recipient. kvsgo
	// never falls back to plaintext.
	ErrNoRecipients = errors.New("e2ee: no recipients")
	// ErrSuite: a cipher suite this package does not implement.
	ErrSuite = errors.New("e2ee: unknown cipher suite")
	// ErrKeySize: a base key or AEAD key of the wrong length.
	ErrKeySize = errors.New("e2ee: wrong key length")

	// ErrKeyFormat: a key file or key entry that does not parse.
	ErrKeyFormat = errors.New("e2ee: malformed key")
	// ErrKeyKind: a key of another kind than expected (e.g. a public key where
	// a private key is needed, or an unknown algorithm).
	ErrKeyKind = errors.New("e2ee: wrong kind of key")
	// ErrKeyPermissions: a private key file that group or others may read.
	ErrKeyPermissions = errors.New("e2ee: private key file is readable by group or others")
)

// FrameGap reports that the counter of a KID jumped: frames From..To
// (inclusive) were never opened. It matches ErrGap.
type FrameGap struct {
	KID      uint64
	From, To uint64 // the missing counters
}

func (g *FrameGap) Error() string {
	return fmt.Sprintf("e2ee: frames missing: kid=%#x ctr=%d..%d (%d frames)", g.KID, g.From, g.To, g.To-g.From+1)
}

// Is makes errors.Is(g, ErrGap) true.
func (g *FrameGap) Is(target error) bool { return target == ErrGap }

// StaleEpochError reports a bundle whose first_pts is older than the
// current epoch's. It matches ErrStaleEpoch.
type StaleEpochError struct {
	EpochID              uint32
	FirstPTS, CurrentPTS uint64
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("e2ee: epoch %#08x starts at pts %d, before the current epoch's %d", e.EpochID, e.FirstPTS, e.CurrentPTS)
}

// Is makes errors.Is(e, ErrStaleEpoch) true.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }
