// Package mkvstream converts between plain Matroska and KVS-E2EE Matroska
// (pkg/e2ee/SPEC.md §6): Decrypt turns a GetMedia/PutMedia stream with a key track
// and SFrame payloads into plain Matroska without the key track, as the
// kvsdecrypt element and "kvsgo decrypt" do; Encrypt does the reverse for
// tests and tools (the streaming core seals frames itself, at the fragment
// builder).
//
// Its one job is that stream transform. It imports pkg/e2ee, pkg/mkv and the
// standard library only; pkg/e2ee and pkg/mkv must not import it.
package mkvstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// Errors of the transform itself; per-frame and per-bundle causes are the
// e2ee sentinels, counted in Report.
var (
	// ErrNotEncrypted: a segment has no key track. Decrypt never passes
	// plaintext through silently.
	ErrNotEncrypted = errors.New("mkvstream: segment has no KVS-E2EE key track")
	// ErrContextMismatch: bundles were accepted but every frame failed
	// authentication, i.e. the context differs from the producer's
	// (rewritten timecodes, another stream): SPEC.md §7.
	ErrContextMismatch = errors.New("mkvstream: every frame failed authentication although its key bundle was valid (context mismatch: rewritten timecodes or stream?)")
	// ErrNothingDecrypted: the stream had frames but none decrypted; it
	// wraps the most frequent cause.
	ErrNothingDecrypted = errors.New("mkvstream: no frame could be decrypted")
	// ErrTagsDropped is a warning: a Tags element held tags other than the
	// service's own (AWS_KINESISVIDEO_*), such as the producer's fragment
	// metadata. Nothing in Tags is signed by the camera, so Decrypt never
	// writes Tags; it reports those that may have mattered.
	ErrTagsDropped = errors.New("mkvstream: tags dropped from the output: the camera does not sign them")
)

// causes are the e2ee sentinels Report counts, in SPEC.md §7 order.
var causes = []error{
	e2ee.ErrBundleMalformed, e2ee.ErrUnsupported, e2ee.ErrBundleSignature, e2ee.ErrWrongStream,
	e2ee.ErrNotRecipient, e2ee.ErrUnwrap, e2ee.ErrMalformed, e2ee.ErrTrackMismatch,
	e2ee.ErrMissingKey, e2ee.ErrHeadMismatch, e2ee.ErrReplay, e2ee.ErrAuth, e2ee.ErrGap, e2ee.ErrStaleEpoch,
	e2ee.ErrHeadUnauthenticated, ErrTagsDropped,
}

// bundleCauses are the causes of a key bundle's rejection (ErrReplay: the
// bundle of an epoch the decryptor no longer holds).
var bundleCauses = []error{e2ee.ErrBundleMalformed, e2ee.ErrUnsupported, e2ee.ErrBundleSignature, e2ee.ErrWrongStream,
	e2ee.ErrNotRecipient, e2ee.ErrUnwrap, e2ee.ErrReplay}

// Cause returns the e2ee sentinel err matches, or err itself.
func Cause(err error) error {
	for _, c := range causes {
		if errors.Is(err, c) {
			return c
		}
	}
	return err
}

// Report counts what Decrypt did. Errors and warnings are counted per cause
// (an e2ee sentinel) rather than reported one by one (SPEC.md §7:
// rate-limited, one counter per cause); First keeps the first full error of
// each cause for messages.
type Report struct {
	Segments, Clusters int
	Bundles            int // key-track blocks read
	BundlesAccepted    int
	Frames             int // A/V blocks read
	Opened             int // A/V blocks decrypted and written
	Counts             map[error]int
	First              map[error]error
	Gaps               []e2ee.FrameGap
	// State is the decryptor's replay state when Decrypt returned: save it
	// and pass it as DecryptorConfig.State next time so that what was
	// output once is refused as a replay after a restart (SPEC.md §7.3).
	State *e2ee.DecryptorState

	last error // the latest counted, for Options.OnProblem
}

func (r *Report) count(err error) {
	r.last = err
	c := Cause(err)
	if r.Counts == nil {
		r.Counts, r.First = map[error]int{}, map[error]error{}
	}
	if r.Counts[c] == 0 {
		r.First[c] = err
	}
	r.Counts[c]++
}

// Dropped is the number of A/V blocks not written.
func (r *Report) Dropped() int { return r.Frames - r.Opened }

// Options tune Decrypt.
type Options struct {
	// Strict makes the first bundle or frame error fail Decrypt instead of
	// dropping the frame and counting the cause.
	Strict bool
	// Reader configures the Matroska reader (limits, resync).
	Reader mkv.ReaderOptions
	// Live writes every block as soon as it is decrypted instead of
	// buffering output (a live pipeline must not wait for a megabyte).
	Live bool
	// MismatchAfter, when positive, ends Decrypt with ErrContextMismatch as
	// soon as that many frames failed authentication with their key bundles
	// accepted and no frame opened yet: a live consumer cannot wait for the
	// end of the stream to learn that every frame fails (SPEC.md §7).
	MismatchAfter int
	// OnProblem, if set, is called after each error or warning is counted,
	// with the Report so far: a live consumer reports causes as they come
	// and may stop by returning an error, which Decrypt then returns.
	OnProblem func(err error, rep *Report) error
}

func keyTrack(h *mkv.SegmentHeader) (uint64, []mkv.Track) {
	var key uint64
	var av []mkv.Track
	for _, t := range h.Tracks {
		if t.CodecID == e2ee.KeyTrackCodecID {
			key = t.Number
			continue
		}
		av = append(av, t)
	}
	return key, av
}

func header(h *mkv.SegmentHeader, tracks []mkv.Track, app string) *mkv.Header {
	out := &mkv.Header{TimecodeScale: h.TimecodeScale, Title: h.Title, MuxingApp: h.MuxingApp, WritingApp: app, Tracks: tracks}
	copy(out.SegmentUID[:], h.SegmentUID)
	return out
}

// Head is the e2ee.Head of a segment head as read: its TimecodeScale and
// every track but the key track, with the fields the Matroska writer
// writes (SPEC.md §5.1).
func Head(h *mkv.SegmentHeader) e2ee.Head {
	out := e2ee.Head{TimecodeScale: h.TimecodeScale}
	for _, t := range h.Tracks {
		if t.CodecID == e2ee.KeyTrackCodecID {
			continue
		}
		out.Tracks = append(out.Tracks, e2ee.HeadTrack{Number: t.Number, UID: t.UID, Type: uint64(t.Type), NotDefault: t.NotDefault,
			CodecID: t.CodecID, CodecPrivate: t.CodecPrivate, Name: t.Name, PixelWidth: uint64(t.PixelWidth), PixelHeight: uint64(t.PixelHeight),
			SamplingFrequency: t.SamplingFrequency, Channels: uint64(t.Channels), BitDepth: uint64(t.BitDepth), DefaultDuration: t.DefaultDuration})
	}
	return out
}

// HeadOf reads the segment head at the start of b (as mkv.AppendHeader
// writes it) and returns its e2ee.Head: what a producer passes to
// Encryptor.SetHead, read back the way consumers will read it.
func HeadOf(b []byte) (e2ee.Head, error) {
	ev, err := mkv.NewReader(bytes.NewReader(b)).NextEvent()
	if err != nil {
		return e2ee.Head{}, fmt.Errorf("mkvstream: reading the segment head: %w", err)
	}
	if ev.Kind != mkv.EventSegmentStart {
		return e2ee.Head{}, fmt.Errorf("mkvstream: no segment head but %v", ev.Kind)
	}
	return Head(ev.Header), nil
}

// plainHeader is the head Decrypt writes: the authenticated fields only
// (SPEC.md §5.1), whatever else the received head held (Title, SegmentUID,
// Colour, Language...).
func plainHeader(h *mkv.SegmentHeader, av []mkv.Track) *mkv.Header {
	out := &mkv.Header{TimecodeScale: h.TimecodeScale, MuxingApp: "kvsgo", WritingApp: "kvsgo decrypt"}
	for _, t := range av {
		out.Tracks = append(out.Tracks, mkv.Track{Number: t.Number, UID: t.UID, Type: t.Type, NotDefault: t.NotDefault, CodecID: t.CodecID,
			CodecPrivate: t.CodecPrivate, Name: t.Name, PixelWidth: t.PixelWidth, PixelHeight: t.PixelHeight,
			SamplingFrequency: t.SamplingFrequency, Channels: t.Channels, BitDepth: t.BitDepth, DefaultDuration: t.DefaultDuration})
	}
	return out
}

func pts(clusterTC uint64, rel int16) uint64 { return uint64(int64(clusterTC) + int64(rel)) }

// Decrypt reads a KVS-E2EE Matroska stream (one or more segments, as
// GetMedia returns them) from r and writes plain Matroska to w: each segment
// head with the authenticated fields only and without the key track, every
// Cluster with its timecode, and each A/V block with its plaintext; a head
// or Cluster is written only before a frame of it that decrypts. Frames
// are opened only under the segment head their epoch's bundle was signed
// for (e2ee.ErrHeadMismatch otherwise), and Tags are never written (a
// producer's own tags are reported as ErrTagsDropped): nothing reaches
// the output that the camera did not sign but the Matroska framing. A
// block that does not decrypt is dropped and its cause counted (or, with
// Options.Strict, returned). cfg configures the e2ee.Decryptor; its Warn, if set, still
// receives the warnings after Report has counted them.
func Decrypt(w io.Writer, r io.Reader, cfg e2ee.DecryptorConfig, opts Options) (*Report, error) {
	rep := &Report{}
	d, err := e2ee.NewDecryptor(countingWarnings(cfg, rep))
	if err != nil {
		return rep, err
	}
	defer func() { rep.State = d.State() }()
	size := 1 << 20
	if opts.Live {
		size = 64 << 10
	}
	bw := bufio.NewWriterSize(w, size)
	rd := mkv.NewReaderOptions(r, opts.Reader)
	s := &decryption{d: d, rep: rep, opts: opts}
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			bw.Flush()
			return rep, fmt.Errorf("mkvstream: reading: %w", err)
		}
		if err := s.handle(ev); err != nil {
			bw.Flush()
			return rep, err
		}
		if err := s.problem(); err != nil {
			bw.Flush()
			return rep, err
		}
		if _, err := bw.Write(s.buf); err != nil {
			return rep, err
		}
		if opts.Live {
			if err := bw.Flush(); err != nil {
				return rep, err
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return rep, err
	}
	return rep, nothingDecrypted(rep)
}

// countingWarnings returns cfg with a Warn that counts each warning in rep
// (and keeps the first 1000 frame gaps) before passing it to cfg's own Warn.
func countingWarnings(cfg e2ee.DecryptorConfig, rep *Report) e2ee.DecryptorConfig {
	userWarn := cfg.Warn
	cfg.Warn = func(err error) {
		rep.count(err)
		var g *e2ee.FrameGap
		if errors.As(err, &g) && len(rep.Gaps) < 1000 {
			rep.Gaps = append(rep.Gaps, *g)
		}
		if userWarn != nil {
			userWarn(err)
		}
	}
	return cfg
}

// decryption is the state of one Decrypt between events.
type decryption struct {
	d    *e2ee.Decryptor
	rep  *Report
	opts Options

	key         uint64 // the key track of the current segment
	clusterTC   uint64
	buf         []byte // what the last event writes
	pt          []byte // the last plaintext
	head        []byte // the current segment's plain head
	pendHead    bool   // head, written before the next frame that opens
	pendCluster bool   // the Cluster start, likewise
}

// handle turns one event of the encrypted stream into the bytes to write
// for it (s.buf, possibly empty). Its errors end Decrypt.
func (s *decryption) handle(ev mkv.Event) error {
	s.buf = s.buf[:0]
	switch ev.Kind {
	case mkv.EventSegmentStart:
		return s.segmentStart(ev)
	case mkv.EventTags:
		s.tags(ev.Tags)
	case mkv.EventClusterStart:
		s.rep.Clusters++
		s.clusterTC = ev.Timecode
		s.pendCluster = true
	case mkv.EventBlock:
		if ev.Block.Track == s.key {
			return s.bundle(ev.Block)
		}
		return s.frame(ev.Block)
	}
	return nil
}

// segmentStart checks a segment head, gives its authenticated fields to the
// decryptor and prepares the plain head written before its first frame.
func (s *decryption) segmentStart(ev mkv.Event) error {
	rep := s.rep
	rep.Segments++
	var av []mkv.Track
	s.key, av = keyTrack(ev.Header)
	if s.key == 0 || len(av) == 0 {
		return fmt.Errorf("%w (segment %d at offset %d)", ErrNotEncrypted, rep.Segments, ev.Offset)
	}
	if err := (&mkv.Header{Tracks: ev.Header.Tracks}).Validate(); err != nil {
		return fmt.Errorf("mkvstream: segment %d at offset %d: %w", rep.Segments, ev.Offset, err)
	}
	s.d.SetHead(Head(ev.Header))
	s.head = mkv.AppendHeader(s.head[:0], plainHeader(ev.Header, av))
	s.pendHead, s.pendCluster = true, false
	return nil
}

// tags reports the producer's own tags (at most 8 names), which are
// dropped with the service's.
func (s *decryption) tags(tags []mkv.SimpleTag) {
	var producer []string
	for _, t := range tags {
		if !strings.HasPrefix(t.Name, "AWS_KINESISVIDEO_") && len(producer) < 8 {
			producer = append(producer, t.Name)
		}
	}
	if len(producer) > 0 {
		s.rep.count(fmt.Errorf("%w: %s in segment %d", ErrTagsDropped, strings.Join(producer, ", "), s.rep.Segments))
	}
}

// bundle gives a key-track block to the decryptor; nothing is written.
func (s *decryption) bundle(b mkv.Block) error {
	s.rep.Bundles++
	if _, err := s.d.AddBundle(b.Data); err != nil {
		s.rep.count(err)
		if s.opts.Strict {
			return fmt.Errorf("mkvstream: key bundle in cluster %d (timecode %d): %w", s.rep.Clusters, s.clusterTC, err)
		}
		return nil
	}
	s.rep.BundlesAccepted++
	return nil
}

// frame opens an A/V block and, if it decrypts, writes it (after the head
// and Cluster start it is the first frame of).
func (s *decryption) frame(b mkv.Block) error {
	rep := s.rep
	rep.Frames++
	var err error
	if b.Track > e2ee.MaxTrack {
		err = fmt.Errorf("%w: track %d", e2ee.ErrTrackMismatch, b.Track)
	} else {
		s.pt, err = s.d.Open(s.pt[:0], uint8(b.Track), b.Keyframe, pts(s.clusterTC, b.RelTimecode), b.Data)
	}
	if err != nil {
		rep.count(err)
		if s.opts.Strict {
			return fmt.Errorf("mkvstream: track %d block at timecode %d: %w", b.Track, pts(s.clusterTC, b.RelTimecode), err)
		}
		return nil
	}
	rep.Opened++
	if s.pendHead {
		s.buf = append(s.buf, s.head...)
		s.pendHead = false
	}
	if s.pendCluster {
		s.buf = mkv.AppendClusterStart(s.buf, s.clusterTC)
		s.pendCluster = false
	}
	// The key flag is authenticated (frame metadata); the others
	// (invisible, discardable) are not, and are not written.
	var flags byte
	if b.Keyframe {
		flags = mkv.FlagKeyframe
	}
	s.buf = mkv.AppendSimpleBlock(s.buf, b.Track, b.RelTimecode, flags, s.pt)
	return nil
}

// problem applies Options.MismatchAfter and Options.OnProblem after an
// event: a non-nil error ends Decrypt.
func (s *decryption) problem() error {
	rep, opts := s.rep, s.opts
	if opts.MismatchAfter > 0 && rep.BundlesAccepted > 0 && rep.Opened == 0 && rep.Counts[e2ee.ErrAuth] >= opts.MismatchAfter {
		return fmt.Errorf("%w (%d frames failed, none opened)", ErrContextMismatch, rep.Counts[e2ee.ErrAuth])
	}
	if opts.OnProblem == nil || rep.last == nil {
		return nil
	}
	err := rep.last
	rep.last = nil
	return opts.OnProblem(err, rep)
}

// nothingDecrypted is the error of a stream whose frames all failed, naming
// its most likely cause, or nil.
func nothingDecrypted(rep *Report) error {
	if rep.Frames == 0 || rep.Opened > 0 {
		return nil
	}
	if rep.BundlesAccepted > 0 && rep.Counts[e2ee.ErrAuth] == rep.Frames {
		return ErrContextMismatch
	}
	// The most frequent cause; when no bundle was accepted, the bundles'
	// root cause (not a recipient, bad signature, ...) rather than the
	// frames' ErrMissingKey that follows from it.
	candidates := causes[:slices.Index(causes, e2ee.ErrGap)] // errors, not warnings
	if rep.BundlesAccepted == 0 {
		for _, c := range bundleCauses {
			if rep.Counts[c] > 0 {
				candidates = bundleCauses
				break
			}
		}
	}
	var top error
	for _, c := range candidates {
		if top == nil || rep.Counts[c] > rep.Counts[top] {
			top = c
		}
	}
	return fmt.Errorf("%w of %d: %w (first: %v)", ErrNothingDecrypted, rep.Frames, top, rep.First[top])
}

// Encrypt reads plain Matroska (one or more segments) from r and writes
// KVS-E2EE Matroska to w: each segment head gains the key track (the next
// free track number, TrackType 17, CodecID e2ee.KeyTrackCodecID), every
// Cluster starts with the key-track block holding the current bundle, and
// each A/V block payload is sealed. A new epoch starts at a Cluster
// whenever enc.RotationDue says so. A/V track numbers must be 1..15.
func Encrypt(w io.Writer, r io.Reader, enc *e2ee.Encryptor) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rd := mkv.NewReader(r)
	var key, clusterTC uint64
	var buf []byte
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("mkvstream: reading: %w", err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			tracks := append([]mkv.Track(nil), ev.Header.Tracks...)
			if err := (&mkv.Header{Tracks: tracks}).Validate(); err != nil {
				return fmt.Errorf("mkvstream: the segment at offset %d: %w", ev.Offset, err)
			}
			key = 0
			for _, t := range tracks {
				if t.CodecID == e2ee.KeyTrackCodecID {
					return fmt.Errorf("mkvstream: input is already encrypted (track %d is a key track)", t.Number)
				}
				if t.Number == 0 || t.Number > e2ee.MaxTrack {
					return fmt.Errorf("mkvstream: track number %d outside 1..%d", t.Number, e2ee.MaxTrack)
				}
				key = max(key, t.Number)
			}
			key++
			tracks = append(tracks, mkv.Track{Number: key, UID: key, Type: e2ee.KeyTrackType, Name: e2ee.KeyTrackName, CodecID: e2ee.KeyTrackCodecID, NotDefault: true})
			buf = mkv.AppendHeader(buf[:0], header(ev.Header, tracks, ev.Header.WritingApp))
			// The bundles sign the head as consumers will read it; a head
			// that changes starts a new epoch at the next Cluster.
			h, err := HeadOf(buf)
			if err != nil {
				return err
			}
			enc.SetHead(h)
		case mkv.EventTags:
			buf = append(buf[:0], ev.TagsRaw...)
		case mkv.EventClusterStart:
			clusterTC = ev.Timecode
			if enc.RotationDue() {
				if _, err := enc.NewEpoch(clusterTC); err != nil {
					return err
				}
			}
			buf = mkv.AppendClusterStart(buf[:0], clusterTC)
			buf = mkv.AppendSimpleBlock(buf, key, 0, 0x80, enc.Bundle())
		case mkv.EventBlock:
			b := ev.Block
			flags := b.Flags
			if b.Keyframe {
				flags |= 0x80
			}
			// As the streaming core does: the block header first, then the
			// frame sealed straight after it, then the header's size set to
			// what the seal appended.
			buf = mkv.AppendSimpleBlockHeader(buf[:0], b.Track, b.RelTimecode, flags, 0)
			buf, err = enc.Seal(buf, uint8(b.Track), b.Keyframe, pts(clusterTC, b.RelTimecode), b.Data)
			if err != nil {
				return fmt.Errorf("mkvstream: track %d block at timecode %d: %w", b.Track, pts(clusterTC, b.RelTimecode), err)
			}
			mkv.SetSimpleBlockPayloadSize(buf, len(buf)-mkv.SimpleBlockHeaderLen)
		}
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}
