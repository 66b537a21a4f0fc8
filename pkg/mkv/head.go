package mkv

import (
	"encoding/binary"
	"math"
)

// This file assembles a segment head: the EBML header, Segment, Info and
// Tracks up to the first Cluster, captured as received (SegmentHeader.Raw)
// and decoded field by field; Tags met on the way are kept out of Raw and
// returned right after the head.

// startCapture begins a segment head with the element header just read.
func (r *Reader) startCapture(e Element) {
	r.hdr = &SegmentHeader{TimecodeScale: DefaultTimecodeScale}
	r.capture.on, r.capture.start, r.capGap = true, e.Offset, 0
	r.capture.buf = append(r.capture.buf[:0], r.lastHeader()...)
}

// segmentStart completes the pending segment head, whose bytes end at end.
func (r *Reader) segmentStart(end int64) Event {
	h := r.hdr
	n := end - r.capture.start - r.capGap
	if n > int64(len(r.capture.buf)) || n < 0 {
		n = int64(len(r.capture.buf))
	}
	h.Raw = append([]byte(nil), r.capture.buf[:n]...)
	r.capture.on, r.capture.buf, r.pendHdr = false, r.capture.buf[:0], false
	if cap(r.capture.buf) > readChunk {
		r.capture.buf = nil
	}
	return Event{Kind: EventSegmentStart, Offset: r.capture.start, Header: h}
}

// headElement handles an element read while a segment head is pending:
// a Cluster, EBML header or Segment completes the head (e is held for the
// next step), and a Tags element is queued for after it. handled reports
// that e needs nothing more.
func (r *Reader) headElement(e Element) (ev Event, ok, handled bool, err error) {
	switch e.ID {
	case IDCluster, IDEBML, IDSegment:
		// The segment head is complete: report it, then handle e.
		r.held = &e
		return r.segmentStart(e.Offset), true, true, nil
	case IDTags:
		// Tags inside the head (the service may send them before Info and
		// Tracks): kept out of Raw, returned after the head.
		return Event{}, false, true, r.queueTags(e)
	}
	return Event{}, false, false, r.capture.tooLarge()
}

// queueTags reads a Tags element found inside a segment head, leaving its
// bytes out of the head's Raw, and queues its event for after the head.
func (r *Reader) queueTags(e Element) error {
	r.capture.buf = r.capture.buf[:max(len(r.capture.buf)-len(r.lastHeader()), 0)]
	r.capture.on = false
	ev, _, err := r.readTags(e)
	r.capture.on = true
	r.capGap += int64(e.HeaderLen) + max(e.Size, 0)
	if err != nil {
		return err
	}
	if r.queueBytes += int64(len(ev.TagsRaw)); r.queueBytes > r.opts.MaxHeaderSize {
		return syntaxErr(e.Offset, e.ID, ErrTooLarge, "Tags inside the segment head at offset %d exceed %d bytes", r.capture.start, r.opts.MaxHeaderSize)
	}
	ev.TagsRaw = append([]byte(nil), ev.TagsRaw...)
	r.queue = append(r.queue, ev)
	return nil
}

// headerField stores an Info or TrackEntry field of the pending header.
func (r *Reader) headerField(e Element, parent uint32) error {
	switch parent {
	case IDInfo:
		return r.infoField(e)
	case IDTrackEntry, IDVideo, IDAudio:
		if n := len(r.hdr.Tracks); n > 0 {
			return r.trackField(e, &r.hdr.Tracks[n-1])
		}
	}
	return nil
}

// infoField stores a field of the segment's Info.
func (r *Reader) infoField(e Element) error {
	h := r.hdr
	var err error
	switch e.ID {
	case IDTimecodeScale:
		if h.TimecodeScale, err = r.uint(e); err == nil && h.TimecodeScale == 0 {
			err = syntaxErr(e.Offset, e.ID, nil, "TimecodeScale 0 at offset %d", e.Offset)
		}
	case IDSegmentUID:
		var d []byte
		d, err = r.ReadData()
		h.SegmentUID = append([]byte(nil), d...)
	case IDTitle:
		h.Title, err = r.str(e)
	case IDMuxingApp:
		h.MuxingApp, err = r.str(e)
	case IDWritingApp:
		h.WritingApp, err = r.str(e)
	}
	return err
}

// trackField stores a field of a TrackEntry (or of its Video or Audio) in t.
func (r *Reader) trackField(e Element, t *Track) error {
	var err error
	var v uint64
	switch e.ID {
	case IDTrackNumber:
		t.Number, err = r.uint(e)
	case IDTrackUID:
		t.UID, err = r.uint(e)
	case IDTrackType:
		v, err = r.uint(e)
		t.Type = int(v)
	case IDName:
		t.Name, err = r.str(e)
	case IDCodecID:
		t.CodecID, err = r.str(e)
	case IDCodecPrivate:
		var d []byte
		d, err = r.ReadData()
		t.CodecPrivate = append([]byte(nil), d...)
	case IDDefaultDuration:
		t.DefaultDuration, err = r.uint(e)
	case IDFlagDefault:
		v, err = r.uint(e)
		t.NotDefault = v == 0
	case IDPixelWidth:
		v, err = r.uint(e)
		t.PixelWidth = int(min(v, math.MaxInt32))
	case IDPixelHeight:
		v, err = r.uint(e)
		t.PixelHeight = int(min(v, math.MaxInt32))
	case IDChannels:
		v, err = r.uint(e)
		t.Channels = int(min(v, math.MaxInt32))
	case IDBitDepth:
		v, err = r.uint(e)
		t.BitDepth = int(min(v, math.MaxInt32))
	case IDSamplingFreq:
		var f float64
		if f, err = r.samplingFrequency(e); err == nil {
			t.SamplingFrequency = f
		}
	}
	return err
}

// samplingFrequency reads a SamplingFrequency: a 4- or 8-byte float.
func (r *Reader) samplingFrequency(e Element) (float64, error) {
	d, err := r.ReadData()
	if err != nil {
		return 0, err
	}
	switch len(d) {
	case 4:
		return float64(math.Float32frombits(binary.BigEndian.Uint32(d))), nil
	case 8:
		return math.Float64frombits(binary.BigEndian.Uint64(d)), nil
	}
	return 0, syntaxErr(e.Offset, e.ID, nil, "SamplingFrequency of %d bytes at offset %d", len(d), e.Offset)
}
