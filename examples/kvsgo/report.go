package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// decryptConfig loads what a consumer needs: the pinned device keys and our
// recipient private keys, for stream.
func decryptConfig(stream, devices string, keys []string) (e2ee.DecryptorConfig, error) {
	cfg := e2ee.DecryptorConfig{Stream: stream}
	var err error
	if cfg.Devices, err = e2ee.LoadDeviceKeys(devices); err != nil {
		return cfg, err
	}
	for _, path := range keys {
		k, err := e2ee.LoadPrivateKey(path)
		if err != nil {
			return cfg, err
		}
		cfg.Keys = append(cfg.Keys, k)
	}
	return cfg, nil
}

// loadState reads the replay state -state names into cfg; a file that does
// not exist yet is a first run.
func loadState(path string, cfg *e2ee.DecryptorConfig) error {
	if path == "" {
		return nil
	}
	st, err := e2ee.LoadStateFile(path)
	if err != nil {
		return fmt.Errorf("-state: %w", err)
	}
	cfg.State = st
	return nil
}

// saveState writes the replay state after a run.
func saveState(path string, rep *mkvstream.Report) error {
	if path == "" || rep == nil || rep.State == nil {
		return nil
	}
	if err := e2ee.WriteStateFile(path, rep.State); err != nil {
		return fmt.Errorf("-state: %w", err)
	}
	return nil
}

// epochSeen is one key bundle as the report lists it. Only bundles that
// verify against a pinned device key are listed: the fields of any other
// bundle are the word of whoever wrote it.
type epochSeen struct {
	id         uint32
	suite      e2ee.Suite
	firstPTS   uint64
	scale      uint64 // the segment's TimecodeScale, ns per unit
	stream     string
	signer     e2ee.SignerID
	recipients []e2ee.RecipientID
	fragments  int
}

// maxEpochsListed bounds the report (an hourly rotation gives 24 a day).
const maxEpochsListed = 1000

// bundleLog lists the distinct signed key bundles of an encrypted stream,
// read from a copy of what Decrypt reads (mkvstream.Report counts bundles
// but does not describe them). Unsigned or unparsable bundles are skipped;
// their cause is in the Report.
type bundleLog struct {
	devices  []*e2ee.DeviceKey
	epochs   []*epochSeen
	byHash   map[[32]byte]*epochSeen
	signers  map[e2ee.SignerID]bool // signers of bundles that did not verify
	unsigned int
}

// watch reads Matroska from r until EOF, noting every key-track block. It
// drains r whatever happens, so that the writer side never blocks.
func (l *bundleLog) watch(r io.Reader) {
	defer io.Copy(io.Discard, r)
	l.byHash, l.signers = map[[32]byte]*epochSeen{}, map[e2ee.SignerID]bool{}
	rd := mkv.NewReader(r)
	var key, scale uint64
	for {
		ev, err := rd.NextEvent()
		if err != nil {
			return
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			key, scale = 0, ev.Header.TimecodeScale
			for _, t := range ev.Header.Tracks {
				if t.CodecID == e2ee.KeyTrackCodecID {
					key = t.Number
				}
			}
		case mkv.EventBlock:
			if key == 0 || ev.Block.Track != key {
				continue
			}
			h := sha256.Sum256(ev.Block.Data)
			if e := l.byHash[h]; e != nil {
				e.fragments++
				continue
			}
			b, err := e2ee.ParseBundle(ev.Block.Data)
			if err != nil {
				continue
			}
			if b.Verify(l.devices) != nil {
				l.signers[b.Signer] = true
				l.unsigned++
				continue
			}
			if len(l.epochs) >= maxEpochsListed {
				continue
			}
			e := &epochSeen{id: b.EpochID, suite: b.Suite, firstPTS: b.FirstPTS, scale: scale, stream: b.Stream, signer: b.Signer, fragments: 1}
			for _, w := range b.Recipients {
				e.recipients = append(e.recipients, w.Recipient)
			}
			l.byHash[h] = e
			l.epochs = append(l.epochs, e)
		}
	}
}

// decryptTo decrypts r into w, joined into one segment unless raw, and
// describes the stream's key bundles in the returned log. progress, if not
// nil, counts the fragments written as they go.
func decryptTo(w io.Writer, r io.Reader, cfg e2ee.DecryptorConfig, opts mkvstream.Options, raw bool, progress *progress) (*mkvstream.Report, *bundleLog, joinStats, error) {
	log := &bundleLog{devices: cfg.Devices}
	lr, lw := io.Pipe()
	logged := make(chan struct{})
	go func() { log.watch(lr); close(logged) }()
	r = io.TeeReader(r, lw)
	defer func() { lw.Close(); <-logged }()

	var st joinStats
	if raw {
		rep, err := mkvstream.Decrypt(w, r, cfg, opts)
		return rep, log, st, err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		var err error
		st, err = joinProgress(w, pr, progress)
		pr.CloseWithError(err)
		done <- err
	}()
	rep, err := mkvstream.Decrypt(pw, r, cfg, opts)
	pw.CloseWithError(err)
	if jerr := <-done; err == nil && jerr != nil && !errors.Is(jerr, io.ErrClosedPipe) {
		err = jerr
	}
	return rep, log, st, err
}

// printReport writes what decryption did: frames opened and dropped per
// cause, gaps, and the epochs with their recipients.
func printReport(w io.Writer, rep *mkvstream.Report, log *bundleLog, cfg e2ee.DecryptorConfig) {
	if rep == nil {
		return
	}
	fmt.Fprintf(w, "kvsgo: %d fragments, %d of %d frames decrypted, %d/%d key bundles accepted\n",
		rep.Clusters, rep.Opened, rep.Frames, rep.BundlesAccepted, rep.Bundles)
	ours := map[e2ee.RecipientID]bool{}
	for _, k := range cfg.Keys {
		ours[k.ID()] = true
	}
	if log != nil {
		for _, e := range log.epochs {
			var rs []string
			for _, id := range e.recipients {
				s := id.String()
				if ours[id] {
					s += " (you)"
				}
				rs = append(rs, s)
			}
			fmt.Fprintf(w, "kvsgo: epoch %#08x %v from %s, signed by device %v, %d fragments, recipients %s\n",
				e.id, e.suite, ptsString(e.firstPTS, e.scale), e.signer, e.fragments, strings.Join(rs, ", "))
		}
		if log.unsigned > 0 {
			var ss []string
			for s := range log.signers {
				ss = append(ss, s.String())
			}
			sort.Strings(ss)
			fmt.Fprintf(w, "kvsgo: %d key bundles not signed by a -device key (signers %s)\n", log.unsigned, strings.Join(ss, ", "))
		}
	}
	var causes []error
	for c := range rep.Counts {
		causes = append(causes, c)
	}
	sort.Slice(causes, func(i, j int) bool {
		if a, b := rep.Counts[causes[i]], rep.Counts[causes[j]]; a != b {
			return a > b
		}
		return causes[i].Error() < causes[j].Error()
	})
	for _, c := range causes {
		if errors.Is(c, e2ee.ErrGap) {
			continue
		}
		fmt.Fprintf(w, "kvsgo: %d× %v (first: %v)\n", rep.Counts[c], c, rep.First[c])
	}
	if n := rep.Counts[e2ee.ErrGap]; n > 0 {
		var missing uint64
		for _, g := range rep.Gaps {
			missing += g.To - g.From + 1
		}
		fmt.Fprintf(w, "kvsgo: %d gaps: frames never received (lost or withheld), %d frames in the first %d gaps\n", n, missing, len(rep.Gaps))
		for i, g := range rep.Gaps {
			if i == 5 {
				fmt.Fprintf(w, "kvsgo:   …\n")
				break
			}
			fmt.Fprintf(w, "kvsgo:   epoch %#08x track %d: frames %d..%d\n", uint32(g.KID>>4), g.KID&0xf, g.From, g.To)
		}
	}
}

// ptsString prints an absolute timecode as a time, a relative one as is.
func ptsString(pts, scale uint64) string {
	if scale == 0 {
		scale = 1_000_000
	}
	t := time.Unix(0, int64(pts*scale)).UTC()
	if t.Year() < 2000 {
		return fmt.Sprintf("timecode %d", pts)
	}
	return t.Format(time.RFC3339Nano)
}

// explain adds to a decryption failure what the user can do about it. The
// root cause is the e2ee sentinel err wraps: when nothing decrypted because
// no key bundle was accepted, mkvstream.Decrypt wraps the bundles' cause
// rather than the frames' ErrMissingKey.
func explain(err error, log *bundleLog, cfg e2ee.DecryptorConfig) error {
	if err == nil {
		return nil
	}
	var hint string
	switch {
	case errors.Is(err, mkvstream.ErrNotEncrypted):
		hint = "the stream is not end-to-end encrypted: read it without -key and -device"
	case errors.Is(err, e2ee.ErrNotRecipient):
		var ids []string
		for _, k := range cfg.Keys {
			ids = append(ids, k.ID().String())
		}
		hint = fmt.Sprintf("none of the -key files (recipient ids %s) is a recipient of this stream; add its .pub to the camera's e2ee-recipients", strings.Join(ids, ", "))
		if log != nil && len(log.epochs) > 0 {
			var rs []string
			for _, id := range log.epochs[len(log.epochs)-1].recipients {
				rs = append(rs, id.String())
			}
			hint += fmt.Sprintf(" (its latest epoch is for %s)", strings.Join(rs, ", "))
		}
	case errors.Is(err, e2ee.ErrBundleSignature):
		hint = "no -device key signed this stream's key bundles: pin the camera's public key (the .pub of its e2ee-signing-key)"
	case errors.Is(err, e2ee.ErrWrongStream):
		hint = "the key bundles were made for another stream name than -stream"
		if log != nil && len(log.epochs) > 0 {
			hint = fmt.Sprintf("the key bundles were made for stream %q, not %q", log.epochs[0].stream, cfg.Stream)
		}
	case errors.Is(err, e2ee.ErrHeadMismatch):
		hint = "the segment heads were changed after the camera signed them (timecode scale, codec, CodecPrivate or tracks): the stream was tampered with in storage"
	case errors.Is(err, e2ee.ErrUnsupported) && strings.Contains(err.Error(), "version 1"):
		hint = "the stream was written by an older kvsgo whose key bundles do not sign the segment head; -accept-v1 decrypts it, warning that timestamps and codec data are not authenticated"
	case errors.Is(err, e2ee.ErrReplay):
		hint = "the key bundles are of epochs this consumer no longer holds or already read (-state): the stream replays footage; to read it again on purpose, run without that -state file"
	case errors.Is(err, e2ee.ErrUnwrap):
		hint = "a -key file matches a recipient id but does not open its wrapped key (a corrupted bundle or a mismatched key)"
	default:
		return err
	}
	return fmt.Errorf("%w\n  %s", err, hint)
}

// nothingDecrypted reports whether err means the output holds no frame.
func nothingDecrypted(err error) bool {
	return errors.Is(err, mkvstream.ErrNothingDecrypted) || errors.Is(err, mkvstream.ErrContextMismatch) || errors.Is(err, mkvstream.ErrNotEncrypted)
}
