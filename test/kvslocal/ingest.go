package kvslocal

import (
	"errors"
	"io"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// The ingest walks a PutMedia body with the streaming MKV reader as its
// bytes arrive and turns it into fragments, acknowledging each as the
// service does: BUFFERING when its Cluster starts, RECEIVED and PERSISTED
// when it is complete (at the next Cluster, at a Tags element holding
// AWS_KINESISVIDEO_END_OF_FRAGMENT, or at the end of the body), PERSISTED
// only once it is on disk. Frame payloads are never inspected.
//
// A fragment is stored as the segment head as received (EBML … Tracks), the
// producer's Tags that preceded its Cluster, and the Cluster as received but
// with a known 8-byte size. It is streamed to its file as the blocks arrive,
// so a connection holds at most one frame in memory.

// Service limits PutMedia enforces.
const (
	maxFragmentBytes    = 50 << 20 // 4001 beyond (Server.maxFragment, for tests)
	maxFragmentDuration = 10 * time.Second
	maxTracks           = 3
	maxFragmentTags     = 10            // SimpleTags per fragment (4009 beyond)
	maxTagsBytes        = 1 << 20       // of producer Tags before one Cluster
	maxTimecodeScale    = 1_000_000_000 // 1 s per unit; beyond, timecode arithmetic could overflow
)

// fragmentState is the fragment being received.
type fragmentState struct {
	number     string
	tc         uint64 // Cluster timecode
	serverTS   time.Time
	file       *fragmentFile
	headerSize int64
	tagsSize   int64
	sizeAt     int64 // file offset of the Cluster's 8-byte size
	size       int64 // bytes written to the file
	written    int64 // body offset up to which the Cluster is in the file
	minTC      uint64
	maxTC      uint64
	frames     int
	tracks     map[uint64]bool
}

type ingest struct {
	s    *Server
	p    putMediaParams
	rec  *recorder
	rd   *mkv.Reader
	acks *ackWriter

	hdr       *mkv.SegmentHeader // current segment head
	tracks    map[uint64]bool
	pendTags  []byte // producer Tags for the next fragment, as received
	pendCount int
	cur       *fragmentState
	lastTC    uint64 // last frame timecode of the previous fragment
	haveLast  bool
	finished  int // fragments completed on this connection (Faults.ErrorAck)
}

func newIngest(s *Server, p putMediaParams, rec *recorder, acks *ackWriter) *ingest {
	// A frame cannot be larger than a fragment.
	rd := mkv.NewReaderOptions(rec, mkv.ReaderOptions{MaxElementSize: s.maxFragment, MaxHeaderSize: 1 << 20})
	return &ingest{s: s, p: p, rec: rec, rd: rd, acks: acks}
}

// run ingests until the body ends, the producer goes away, an ERROR ack
// ends the session, or the server closes.
func (in *ingest) run() {
	name := in.p.stream.Name
	defer func() {
		if in.cur != nil {
			in.cur.file.abort()
		}
	}()
	var err error
	for {
		var ev mkv.Event
		ev, err = in.rd.NextEvent()
		if err != nil {
			break
		}
		if err = in.handle(ev); err != nil {
			break
		}
	}
	var ie *ingestError
	switch {
	case errors.Is(err, io.EOF):
		if err = in.finish(); err == nil {
			in.s.log.Info("PutMedia ended", "stream", name)
			return
		}
		if !errors.As(err, &ie) {
			in.s.log.Info("PutMedia ended early", "stream", name, "error", err)
			return
		}
	case errors.As(err, &ie):
	case errors.Is(err, errRecorderFull):
		ie = ingestErr(errFragmentSize, in.curTC(), "%v", err)
	case clientGone(in.rec):
		in.s.log.Info("PutMedia connection lost", "stream", name, "error", in.rec.err)
		return
	case in.acks.failed() != nil:
		in.s.log.Info("PutMedia acks undeliverable", "stream", name, "error", in.acks.failed())
		return
	default:
		// The body ended cleanly inside an element, or is not MKV.
		ie = ingestErr(errInvalidMKV, in.curTC(), "%v", err)
	}
	in.s.log.Info("PutMedia rejected", "stream", name, "error_id", ie.id, "cause", ie.msg)
	number := ie.number
	if number == "" && in.cur != nil {
		number = in.cur.number
	}
	in.acks.send(ack{EventType: ackError, FragmentTimecode: ie.tc, FragmentNumber: number, ErrorID: ie.id, ErrorCode: ie.code})
}

func (in *ingest) curTC() uint64 {
	if in.cur != nil {
		return in.cur.tc
	}
	return 0
}

func (in *ingest) handle(ev mkv.Event) error {
	switch ev.Kind {
	case mkv.EventSegmentStart:
		return in.segmentStart(ev)
	case mkv.EventTags:
		return in.tags(ev)
	case mkv.EventClusterStart:
		return in.clusterStart(ev)
	case mkv.EventBlock:
		return in.block(ev)
	}
	return nil
}

func (in *ingest) segmentStart(ev mkv.Event) error {
	if err := in.finish(); err != nil {
		return err
	}
	h := ev.Header
	switch {
	case len(h.Tracks) == 0:
		return ingestErr(errInvalidMKV, 0, "the segment at offset %d declares no tracks", ev.Offset)
	case h.TimecodeScale > maxTimecodeScale:
		return ingestErr(errInvalidMKV, 0, "TimecodeScale %d ns is over %d", h.TimecodeScale, maxTimecodeScale)
	case len(h.Tracks) > maxTracks:
		return ingestErr(errTooManyTracks, 0, "the segment declares %d tracks, at most %d are allowed", len(h.Tracks), maxTracks)
	}
	in.hdr = h
	in.tracks = map[uint64]bool{}
	for _, t := range h.Tracks {
		in.tracks[t.Number] = true
	}
	in.pendTags, in.pendCount = nil, 0
	in.rec.trim(ev.Offset + int64(len(h.Raw)))
	return nil
}

func (in *ingest) tags(ev mkv.Event) error {
	defer in.rec.trim(in.rd.Offset())
	for _, t := range ev.Tags {
		if t.Name == mkv.TagEndOfFragment {
			return in.finish()
		}
	}
	// Tags between Clusters belong to the next fragment.
	if err := in.finish(); err != nil {
		return err
	}
	in.pendTags = append(in.pendTags, ev.TagsRaw...)
	in.pendCount += len(ev.Tags)
	if in.pendCount > maxFragmentTags || len(in.pendTags) > maxTagsBytes {
		return ingestErr(errMetadataLimit, 0, "%d tags (%d bytes) before one fragment; at most %d are allowed", in.pendCount, len(in.pendTags), maxFragmentTags)
	}
	return nil
}

func (in *ingest) clusterStart(ev mkv.Event) error {
	if err := in.finish(); err != nil {
		return err
	}
	if in.hdr == nil {
		return ingestErr(errInvalidMKV, ev.Timecode, "a Cluster at offset %d before any segment head", ev.Offset)
	}
	number, err := in.s.store.nextNumber()
	if err != nil {
		in.s.log.Error("allocating a fragment number", "error", err)
		return ingestErr(errArchival, ev.Timecode, "could not allocate a fragment number")
	}
	if in.haveLast && ev.Timecode <= in.lastTC {
		ie := ingestErr(errTimecode, ev.Timecode, "fragment timecode %d is not greater than the previous fragment's last frame timecode %d", ev.Timecode, in.lastTC)
		ie.number = number
		return ie
	}
	dk, wrapped, kerr := in.s.generateDataKey(in.p.stream.KMSKeyID, in.p.caller) // kmsuse.go
	if kerr != nil {
		ie := ingestErr(kerr.ID, ev.Timecode, "%v", kerr)
		ie.number = number
		return ie
	}
	f := &fragmentState{number: number, tc: ev.Timecode, serverTS: in.s.cfg.Now(), minTC: ev.Timecode, maxTC: ev.Timecode, tracks: map[uint64]bool{}}
	if f.file, err = in.s.store.createFragment(in.p.stream.Name, number); err != nil {
		if errors.Is(err, errStreamGone) {
			return ingestErr(errStreamNotActive, ev.Timecode, "the stream was deleted")
		}
		in.s.log.Error("creating a fragment file", "stream", in.p.stream.Name, "error", err)
		return ingestErr(errArchival, ev.Timecode, "could not store the fragment")
	}
	f.file.seal(dk, wrapped, number) // seal.go
	in.cur = f
	// The Cluster header as received, to know where its payload starts.
	hdr := in.rec.bytes(ev.Offset, in.rd.Offset())
	_, idLen, _ := mkv.ReadID(hdr)
	_, sizeLen, err := mkv.ReadSize(hdr[idLen:])
	if err != nil {
		return ingestErr(errInvalidMKV, ev.Timecode, "the Cluster at offset %d has an invalid size", ev.Offset)
	}
	head := append([]byte(nil), in.hdr.Raw...)
	head = append(head, in.pendTags...)
	f.headerSize, f.tagsSize = int64(len(in.hdr.Raw)), int64(len(in.pendTags))
	head = mkv.AppendID(head, mkv.IDCluster)
	f.sizeAt = int64(len(head))
	head = append(head, 0x01, 0, 0, 0, 0, 0, 0, 0) // 8-byte size, patched by finish
	if err := in.write(head); err != nil {
		return err
	}
	in.pendTags, in.pendCount = nil, 0
	f.written = ev.Offset + int64(idLen+sizeLen)
	if err := in.flushCluster(); err != nil {
		return err
	}
	return in.ack(ackBuffering, f)
}

func (in *ingest) block(ev mkv.Event) error {
	f := in.cur
	if f == nil {
		return ingestErr(errInvalidMKV, 0, "a block at offset %d outside a Cluster", ev.Offset)
	}
	b := ev.Block
	if !in.tracks[b.Track] {
		return ingestErr(errTrackMismatch, f.tc, "a block for track %d, which the segment does not declare", b.Track)
	}
	tc := int64(f.tc) + int64(b.RelTimecode)
	if tc < 0 {
		return ingestErr(errInvalidMKV, f.tc, "a frame timecode below 0 at offset %d", ev.Offset)
	}
	f.minTC, f.maxTC = min(f.minTC, uint64(tc)), max(f.maxTC, uint64(tc))
	if d := time.Duration((f.maxTC - f.minTC) * in.hdr.TimecodeScale); d > maxFragmentDuration {
		return ingestErr(errFragmentDuration, f.tc, "the fragment lasts %v, more than %v", d, maxFragmentDuration)
	}
	f.frames++
	f.tracks[b.Track] = true
	if err := in.flushCluster(); err != nil {
		return err
	}
	if f.size > in.s.maxFragment {
		return ingestErr(errFragmentSize, f.tc, "the fragment is larger than %d bytes", in.s.maxFragment)
	}
	return nil
}

// write appends to the current fragment's file.
func (in *ingest) write(b []byte) error {
	f := in.cur
	if _, err := f.file.Write(b); err != nil {
		in.s.log.Error("writing a fragment", "stream", in.p.stream.Name, "error", err)
		return ingestErr(errArchival, f.tc, "could not store the fragment")
	}
	f.size += int64(len(b))
	return nil
}

// flushCluster moves the Cluster bytes the reader has consumed into the
// fragment's file.
func (in *ingest) flushCluster() error {
	f, end := in.cur, in.rd.Offset()
	if err := in.write(in.rec.bytes(f.written, end)); err != nil {
		return err
	}
	f.written = end
	in.rec.trim(end)
	return nil
}

// finish completes the current fragment: RECEIVED, durable storage, then
// PERSISTED when the stream retains data.
func (in *ingest) finish() error {
	f := in.cur
	if f == nil {
		return nil
	}
	if f.frames == 0 {
		return ingestErr(errFramesMissing, f.tc, "the fragment has no frames")
	}
	if len(in.tracks) > 1 {
		for t := range in.tracks {
			if !f.tracks[t] {
				return ingestErr(errFramesMissing, f.tc, "the fragment has no frames for track %d", t)
			}
		}
	}
	if e := in.injectedError(f); e != nil { // Faults.ErrorAck (faults.go)
		return e
	}
	in.cur = nil
	in.lastTC, in.haveLast = f.maxTC, true
	payload := f.size - f.sizeAt - 8
	if _, err := f.file.WriteAt(mkv.AppendSizeWidth(nil, payload, 8), f.sizeAt); err != nil {
		f.file.abort()
		in.s.log.Error("writing a fragment", "stream", in.p.stream.Name, "error", err)
		return ingestErr(errArchival, f.tc, "could not store the fragment")
	}
	scale := in.hdr.TimecodeScale
	prod := time.Unix(0, int64(f.tc*scale))
	if in.p.relative {
		prod = in.p.start.Add(time.Duration(f.tc * scale))
	}
	rec := fragment{
		FragmentInfo: FragmentInfo{Number: f.number, ProducerTimestamp: prod, ServerTimestamp: f.serverTS, Timecode: f.tc,
			TimecodeScale: scale, DurationMillis: int64(time.Duration((f.maxTC-f.minTC)*scale) / time.Millisecond),
			Frames: f.frames, Size: f.size},
		HeaderSize: f.headerSize, TagsSize: f.tagsSize, DataKey: f.file.dataKey(),
	}
	// The fragment is stored even if the producer no longer reads acks.
	received := in.ack(ackReceived, f)
	if m, e := in.s.store.get(streamRef{StreamName: in.p.stream.Name}); e == nil && m.RetentionHours == 0 {
		f.file.abort() // no retention: nothing is kept after RECEIVED (retention.go)
		return received
	}
	if err := in.s.store.commit(f.file, rec); err != nil {
		if errors.Is(err, errStreamGone) {
			return ingestErr(errStreamNotActive, f.tc, "the stream was deleted")
		}
		in.s.log.Error("storing a fragment", "stream", in.p.stream.Name, "error", err)
		return ingestErr(errArchival, f.tc, "could not store the fragment")
	}
	in.s.log.Debug("fragment stored", "stream", in.p.stream.Name, "fragment", f.number, "timecode", f.tc, "frames", f.frames)
	if received != nil {
		return received
	}
	return in.ack(ackPersisted, f)
}

// ack sends an acknowledgement unless the producer asked for none (or a
// fault withholds it).
func (in *ingest) ack(typ string, f *fragmentState) error {
	if !in.p.acks {
		return nil
	}
	if in.s.getFaults().WithholdAcks && (typ == ackReceived || typ == ackPersisted) {
		return nil
	}
	in.s.delayAck() // Faults.AckDelay (faults.go)
	return in.acks.send(ack{EventType: typ, FragmentTimecode: f.tc, FragmentNumber: f.number})
}
