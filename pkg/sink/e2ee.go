package sink

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// E2EEConfig turns on end-to-end encryption (pkg/e2ee, KVS-E2EE v1): every
// frame is sealed once, as it enters its fragment and before the content
// store, so that replays resend the same ciphertext; every fragment starts
// with the key bundle of its epoch on an extra key track.
type E2EEConfig struct {
	// Recipients receive every epoch's secret. At least one is required:
	// a stream configured for E2EE is never sent in plaintext.
	Recipients []*e2ee.PublicKey
	// SigningKey is the device's Ed25519 key that signs every bundle.
	SigningKey *e2ee.SigningKey
	// Suite is the SFrame cipher suite; it defaults to AES-256-GCM.
	Suite e2ee.Suite
	// RotationInterval bounds an epoch; it defaults to 1 h.
	RotationInterval time.Duration
}

// ErrE2EE is wrapped by end-to-end encryption failures.
var ErrE2EE = errors.New("sink: end-to-end encryption")

// sealer adapts an e2ee.Encryptor to fragment.Sealer. The Encryptor is used
// only under Sink.mu (Put); recipient changes arrive from other threads and
// take effect at the next fragment.
type sealer struct {
	enc   *e2ee.Encryptor
	queue func(Event) // Sink.queue: StartFragment runs with Sink.mu held
	track uint64      // the key track's number

	mu      sync.Mutex
	pending []*e2ee.PublicKey // a recipient change not yet applied
}

func newSealer(cfg Config, queue func(Event)) (*sealer, error) {
	c := cfg.E2EE
	if !cfg.AbsoluteFragmentTimes {
		// Frames are authenticated with their timecodes; relative
		// timecodes would be rewritten on reconnect.
		return nil, fmt.Errorf("%w: %w: end-to-end encryption needs absolute-fragment-times=true", ErrSettings, ErrE2EE)
	}
	enc, err := e2ee.NewEncryptor(e2ee.EncryptorConfig{
		Stream: cfg.StreamName, Suite: c.Suite, SigningKey: c.SigningKey, Recipients: c.Recipients,
		RotationInterval: c.RotationInterval, Now: cfg.Clock.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %w", ErrSettings, ErrE2EE, err)
	}
	kt := uint64(2) // after the one media track
	if cfg.AV {
		kt = avKeyTrackNumber
	}
	return &sealer{enc: enc, queue: queue, track: kt}, nil
}

// keyTrack is the TrackEntry of the key track.
func (s *sealer) keyTrack() mkv.Track {
	return mkv.Track{Number: s.track, UID: s.track, Type: e2ee.KeyTrackType, Name: e2ee.KeyTrackName,
		CodecID: e2ee.KeyTrackCodecID, NotDefault: true}
}

// setHead signs the segment head written from now on into the bundles of
// the next epoch, which a changed head starts at the next fragment.
// Called with Sink.mu held, like StartFragment.
func (s *sealer) setHead(hdr []byte) {
	h, err := mkvstream.HeadOf(hdr)
	if err != nil {
		// The sink's own header always reads back; should it not, the
		// empty head makes every frame fail at the consumer rather than
		// present a head the camera did not sign.
		h = e2ee.Head{}
	}
	s.enc.SetHead(h)
}

// setRecipients queues a new recipient set for the next fragment.
func (s *sealer) setRecipients(rs []*e2ee.PublicKey) error {
	if len(rs) == 0 {
		return fmt.Errorf("%w: %w", ErrE2EE, e2ee.ErrNoRecipients)
	}
	s.mu.Lock()
	s.pending = append([]*e2ee.PublicKey(nil), rs...)
	s.mu.Unlock()
	return nil
}

// StartFragment applies a pending recipient change, starts a new epoch
// when one is due, and returns the bundle that begins the fragment.
func (s *sealer) StartFragment(tc uint64) ([]byte, error) {
	s.mu.Lock()
	rs := s.pending
	s.pending = nil
	s.mu.Unlock()
	if rs != nil {
		if err := s.enc.SetRecipients(rs); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrE2EE, err)
		}
	}
	if s.enc.RotationDue() {
		if _, err := s.enc.NewEpoch(tc); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrE2EE, err)
		}
		info := s.enc.Epoch()
		ids := make([]string, len(info.Recipients))
		for i, r := range info.Recipients {
			ids[i] = fmt.Sprintf("%x", r[:])
		}
		s.queue(Event{Kind: EventEpoch, Epoch: &info,
			Message: fmt.Sprintf("E2EE epoch %08x from timecode %d for %d recipient(s): %s", info.ID, info.FirstPTS, len(ids), strings.Join(ids, ","))})
	}
	return s.enc.Bundle(), nil
}

// AppendSealed seals one frame straight into the fragment buffer.
func (s *sealer) AppendSealed(dst []byte, track uint64, keyframe bool, tc uint64, pt []byte) ([]byte, error) {
	out, err := s.enc.Seal(dst, uint8(track), keyframe, tc, pt)
	if err != nil {
		return dst, fmt.Errorf("%w: %w", ErrE2EE, err)
	}
	return out, nil
}

// SetRecipients replaces the E2EE recipients while streaming: the next
// fragment starts a new epoch wrapped to rs only. It fails when the stream
// is not encrypted or rs is empty.
func (s *Sink) SetRecipients(rs []*e2ee.PublicKey) error {
	if s.sealer == nil {
		return fmt.Errorf("%w: the stream is not encrypted", ErrE2EE)
	}
	return s.sealer.setRecipients(rs)
}

// ChangeRecipients is SetRecipients for an e2ee-recipients value changed
// while streaming. A value that gives no valid recipient stops the stream
// with an error rather than keep encrypting to the previous set (which may
// hold a recipient being revoked).
func (s *Sink) ChangeRecipients(spec string) error {
	rs, err := LoadRecipients(spec)
	if err == nil {
		err = s.SetRecipients(rs)
	}
	if err != nil {
		err = fmt.Errorf("changing the recipients: %w", err)
		s.fail(err)
	}
	return err
}
