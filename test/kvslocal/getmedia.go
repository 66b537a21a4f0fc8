package kvslocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// GetMedia (POST /getMedia, kinesis-video-media) streams stored fragments,
// each re-emitted as its own MKV chunk exactly as the service lays them out
// (local-aws.md §5): the segment head as the producer sent it (EBML header,
// Info, Tracks...) but with its Segment of unknown size (8-byte size field,
// whatever size the producer wrote: a chunk is not the producer's whole
// segment), the producer's Tags, Tags with
// AWS_KINESISVIDEO_FRAGMENT_NUMBER, _SERVER_TIMESTAMP and
// _PRODUCER_TIMESTAMP, the Cluster (with a known size, as the service sends
// it), then Tags with AWS_KINESISVIDEO_MILLIS_BEHIND_NOW and
// AWS_KINESISVIDEO_CONTINUATION_TOKEN. Every selector keeps the response open
// for new fragments until none has come for Config.GetMediaIdleTimeout.

type startSelector struct {
	StartSelectorType   string
	AfterFragmentNumber string
	StartTimestamp      *json.Number
	ContinuationToken   string
}

// decodeNumbers parses a JSON body keeping numbers exact.
func decodeNumbers(body []byte, v any) *apiError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return newErr("SerializationException", "The request body is not valid JSON for this operation: "+err.Error())
	}
	return nil
}

// timestampOf parses a JSON epoch-seconds timestamp: integer seconds
// (botocore) or with a fraction (aws-sdk-go-v2), exactly when it can.
func timestampOf(n *json.Number, field string) (time.Time, *apiError) {
	if n == nil {
		return time.Time{}, newErr("InvalidArgumentException", field+" is required.")
	}
	if t, err := parseEpochSeconds(n.String()); err == nil {
		return t, nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 {
		return time.Time{}, newErr("InvalidArgumentException", fmt.Sprintf("%s %s is not a timestamp in epoch seconds.", field, n))
	}
	return time.UnixMilli(int64(f*1000 + 0.5)), nil
}

// cmpNumbers compares two decimal fragment numbers.
func cmpNumbers(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// startIndex resolves a StartSelector against the stored fragments.
func startIndex(sel *startSelector, frags []fragment) (int, *apiError) {
	if sel == nil {
		return 0, newErr("InvalidArgumentException", "1 validation error detected: Value null at 'startSelector' failed to satisfy constraint: Member must not be null")
	}
	switch sel.StartSelectorType {
	case "EARLIEST":
		return 0, nil
	case "NOW":
		return len(frags), nil
	case "FRAGMENT_NUMBER":
		if sel.AfterFragmentNumber == "" {
			return 0, newErr("InvalidArgumentException", "AfterFragmentNumber is required with FRAGMENT_NUMBER.")
		}
		i := sort.Search(len(frags), func(i int) bool { return cmpNumbers(frags[i].Number, sel.AfterFragmentNumber) >= 0 })
		if i == len(frags) || frags[i].Number != sel.AfterFragmentNumber {
			return 0, newErr("ResourceNotFoundException", fmt.Sprintf("Fragment %s was not found on the stream.", sel.AfterFragmentNumber))
		}
		return i, nil
	case "CONTINUATION_TOKEN":
		if sel.ContinuationToken == "" {
			return 0, newErr("InvalidArgumentException", "ContinuationToken is required with CONTINUATION_TOKEN.")
		}
		return sort.Search(len(frags), func(i int) bool { return cmpNumbers(frags[i].Number, sel.ContinuationToken) > 0 }), nil
	case "PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP":
		t, e := timestampOf(sel.StartTimestamp, "StartTimestamp")
		if e != nil {
			return 0, e
		}
		// The first fragment that contains t or starts after it.
		for i, f := range frags {
			ts := f.ServerTimestamp
			if sel.StartSelectorType == "PRODUCER_TIMESTAMP" {
				ts = f.ProducerTimestamp
			}
			if !ts.Add(time.Duration(f.DurationMillis) * time.Millisecond).Before(t) {
				return i, nil
			}
		}
		return len(frags), nil
	}
	return 0, newErr("InvalidArgumentException", fmt.Sprintf("1 validation error detected: Value '%s' at 'startSelector.startSelectorType' failed to satisfy constraint: Member must satisfy enum value set: [FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, NOW, EARLIEST, CONTINUATION_TOKEN]", sel.StartSelectorType))
}

func (s *Server) getMedia(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		streamRef
		StartSelector *startSelector
	}
	if e := decodeNumbers(body, &in); e != nil {
		writeError(w, e)
		return
	}
	m, e := s.store.get(in.streamRef)
	if e != nil {
		writeError(w, e)
		return
	}
	frags, changed := s.store.fragments(m.Name)
	i, e := startIndex(in.StartSelector, frags)
	if e != nil {
		writeError(w, e)
		return
	}
	w.Header().Set("Content-Type", "video/webm")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	idle := time.NewTimer(s.cfg.GetMediaIdleTimeout)
	defer idle.Stop()
	for {
		for ; i < len(frags); i++ {
			if err := s.writeChunk(w, m.Name, frags[i], chunkGetMedia); err != nil {
				s.log.Info("GetMedia ended", "stream", m.Name, "error", err)
				return
			}
			rc.Flush()
		}
		select {
		case <-changed:
			frags, changed = s.store.fragments(m.Name)
			if len(frags) > i {
				idle.Reset(s.cfg.GetMediaIdleTimeout)
			}
		case <-idle.C:
			return
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
}

// chunkKind selects the metadata tags of a chunk.
type chunkKind int

const (
	chunkGetMedia chunkKind = iota
	chunkFragmentList
)

// writeChunk writes one stored fragment as a chunk, streaming it from its
// file.
func (s *Server) writeChunk(w io.Writer, stream string, f fragment, kind chunkKind) error {
	file, err := s.openFragment(stream, f) // seal.go
	if err != nil {
		var kerr *KMSError
		if errors.As(err, &kerr) {
			// The service ends the response with a chunk naming the error.
			w.Write(errorChunk(f.Number, kerr.ID))
		}
		return fmt.Errorf("fragment %s: %w", f.Number, err)
	}
	defer file.Close()
	meta := []mkv.SimpleTag{
		{Name: mkv.TagFragmentNumber, Value: f.Number},
		{Name: mkv.TagServerTimestamp, Value: secMillis(f.ServerTimestamp)},
		{Name: mkv.TagProducerTimestamp, Value: secMillis(f.ProducerTimestamp)},
	}
	if kind == chunkFragmentList {
		meta[1].Name, meta[2].Name = "AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP", "AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP"
	}
	rawHead := make([]byte, f.HeaderSize)
	if _, err := io.ReadFull(file, rawHead); err != nil {
		return fmt.Errorf("fragment %s is truncated on disk: %w", f.Number, err)
	}
	head, err := serviceHead(rawHead)
	if err != nil {
		return fmt.Errorf("fragment %s: %w", f.Number, err)
	}
	sections := []any{
		head,
		f.TagsSize,
		appendTags(nil, meta),
		f.Size - f.HeaderSize - f.TagsSize,
	}
	if kind == chunkGetMedia {
		behind := max(s.cfg.Now().Sub(f.ServerTimestamp).Milliseconds(), 0)
		sections = append(sections, appendTags(nil, []mkv.SimpleTag{
			{Name: mkv.TagMillisBehindNow, Value: strconv.FormatInt(behind, 10)},
			{Name: mkv.TagContinuationToken, Value: f.Number},
		}))
	}
	for _, sec := range sections {
		switch v := sec.(type) {
		case []byte:
			_, err = w.Write(v)
		case int64: // that many bytes of the stored fragment
			var n int64
			n, err = io.Copy(w, io.LimitReader(file, v))
			if err == nil && n != v {
				err = fmt.Errorf("fragment %s is truncated on disk", f.Number)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unknownSegmentSize is the size field the service writes for every
// chunk's Segment: 8 bytes, all ones (unknown).
var unknownSegmentSize = []byte{0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// serviceHead returns a stored segment head (EBML header, Segment, Info,
// Tracks... as the producer sent them) with the Segment's size field
// replaced by unknownSegmentSize, as the service serves heads: a producer's
// known size (mkvmerge writes one) would otherwise claim the chunks that
// follow.
func serviceHead(raw []byte) ([]byte, error) {
	for off := 0; off < len(raw); {
		id, n, err := mkv.ReadID(raw[off:])
		if err != nil {
			return nil, fmt.Errorf("stored segment head: invalid element at offset %d", off)
		}
		size, sn, err := mkv.ReadSize(raw[off+n:])
		if err != nil {
			return nil, fmt.Errorf("stored segment head: invalid size at offset %d", off+n)
		}
		if id == mkv.IDSegment {
			out := make([]byte, 0, len(raw)-sn+len(unknownSegmentSize))
			out = append(out, raw[:off+n]...)
			out = append(out, unknownSegmentSize...)
			return append(out, raw[off+n+sn:]...), nil
		}
		if size < 0 || size > int64(len(raw)-off-n-sn) {
			return nil, fmt.Errorf("stored segment head: %s at offset %d overruns the head", mkv.ElementName(id), off)
		}
		off += n + sn + int(size)
	}
	return nil, fmt.Errorf("stored segment head without a Segment")
}

// errorChunk is the chunk GetMedia ends with when a fragment cannot be
// read: an EBML header, a Segment and Tags with the fragment number,
// AWS_KINESISVIDEO_ERROR_CODE and AWS_KINESISVIDEO_ERROR_ID (local-aws.md
// §5).
func errorChunk(number string, id int) []byte {
	b := mkv.AppendEBMLHeader(nil)
	b = mkv.AppendID(b, mkv.IDSegment)
	b = append(b, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF)
	return appendTags(b, []mkv.SimpleTag{
		{Name: mkv.TagFragmentNumber, Value: number},
		{Name: "AWS_KINESISVIDEO_ERROR_CODE", Value: errorCodes[id]},
		{Name: "AWS_KINESISVIDEO_ERROR_ID", Value: strconv.Itoa(id)},
	})
}

// appendTags appends a Tags element with one Tag holding the SimpleTags,
// with 8-byte sizes, as the service writes its metadata.
func appendTags(dst []byte, tags []mkv.SimpleTag) []byte {
	var st []byte
	for _, t := range tags {
		var b []byte
		b = mkv.AppendID(b, mkv.IDTagName)
		b = mkv.AppendSizeWidth(b, int64(len(t.Name)), 8)
		b = append(b, t.Name...)
		b = mkv.AppendID(b, mkv.IDTagString)
		b = mkv.AppendSizeWidth(b, int64(len(t.Value)), 8)
		b = append(b, t.Value...)
		st = mkv.AppendID(st, mkv.IDSimpleTag)
		st = mkv.AppendSizeWidth(st, int64(len(b)), 8)
		st = append(st, b...)
	}
	tag := mkv.AppendID(nil, mkv.IDTag)
	tag = mkv.AppendSizeWidth(tag, int64(len(st)), 8)
	tag = append(tag, st...)
	dst = mkv.AppendID(dst, mkv.IDTags)
	dst = mkv.AppendSizeWidth(dst, int64(len(tag)), 8)
	return append(dst, tag...)
}

// secMillis formats a time as the service's "seconds.millis" strings.
func secMillis(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}
