package kvslocal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// Service limits PutMedia enforces.
const (
	maxFragmentBytes    = 50 << 20
	maxFragmentDuration = 10 * time.Second
	maxTracks           = 3
	maxFragmentTags     = 10
)

// ack is one acknowledgement line.
type ack struct {
	EventType        string `json:"EventType"`
	FragmentTimecode uint64 `json:"FragmentTimecode"`
	FragmentNumber   string `json:"FragmentNumber,omitempty"`
	ErrorID          int    `json:"ErrorId,omitempty"`
	ErrorCode        string `json:"ErrorCode,omitempty"`
}

// ackWriter writes acknowledgements from the ingest and IDLE keep-alives
// from a timer, one JSON object per line, flushing each.
type ackWriter struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	rc   *http.ResponseController
	last time.Time
	err  error
	stop chan struct{}
}

func (a *ackWriter) send(x ack) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	b, _ := json.Marshal(x)
	if _, err := a.w.Write(append(b, '\n')); err != nil {
		a.err = err
		return err
	}
	a.err = a.rc.Flush()
	a.last = time.Now()
	return a.err
}

func (a *ackWriter) idle(interval time.Duration) {
	t := time.NewTicker(interval / 2)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.mu.Lock()
			due := time.Since(a.last) >= interval
			a.mu.Unlock()
			if due && a.send(ack{EventType: "IDLE"}) != nil {
				return
			}
		}
	}
}

// ingestError ends a PutMedia with an ERROR ack.
type ingestError struct {
	id   int
	code string
	tc   uint64
	msg  string
}

func (e *ingestError) Error() string { return fmt.Sprintf("%d %s: %s", e.id, e.code, e.msg) }

// fragmentState is the fragment being received.
type fragmentState struct {
	tc      uint64 // cluster timecode, MKV units
	buf     []byte // producer tags + cluster, re-encoded
	minTC   uint64
	maxTC   uint64
	frames  int
	tracks  map[uint64]bool
	tagsCnt int
}

// ingest is one PutMedia connection.
type ingest struct {
	s        *Server
	stream   streamMeta
	acks     *ackWriter
	ackReq   bool
	relative bool
	start    time.Time

	hdr       *mkv.SegmentHeader
	tracks    map[uint64]bool
	scale     uint64
	pendTags  []byte
	pendCount int
	cur       *fragmentState
	lastMaxTC uint64
	haveLast  bool
}

func (s *Server) putMedia(w http.ResponseWriter, r *http.Request, _ identity) {
	m, e := s.streamFor(streamRef{StreamName: r.Header.Get("x-amzn-stream-name"), StreamARN: r.Header.Get("x-amzn-stream-arn")})
	if e != nil {
		writeError(w, e.status, e.code, e.msg)
		return
	}
	in := &ingest{s: s, stream: m, ackReq: r.Header.Get("x-amzn-fragment-acknowledgment-required") != "0"}
	switch t := r.Header.Get("x-amzn-fragment-timecode-type"); t {
	case "ABSOLUTE", "":
	case "RELATIVE":
		in.relative = true
	default:
		writeError(w, 400, "InvalidArgumentException", fmt.Sprintf("x-amzn-fragment-timecode-type %q is not ABSOLUTE or RELATIVE", t))
		return
	}
	if v := r.Header.Get("x-amzn-producer-start-timestamp"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			writeError(w, 400, "InvalidArgumentException", fmt.Sprintf("x-amzn-producer-start-timestamp %q is not epoch seconds", v))
			return
		}
		in.start = time.UnixMilli(int64(f * 1000))
	} else if in.relative {
		writeError(w, 400, "InvalidArgumentException", "RELATIVE timecodes need x-amzn-producer-start-timestamp")
		return
	}
	if !s.acquire(m.Name) {
		writeError(w, 400, "ConnectionLimitExceededException", "Too many concurrent PutMedia connections on this stream.")
		return
	}
	defer s.release(m.Name)

	rc := http.NewResponseController(w)
	if err := rc.EnableFullDuplex(); err != nil {
		writeError(w, 500, "InternalFailure", "full duplex unavailable")
		return
	}
	var body io.Reader = r.Body
	if s.cfg.CaptureBodies {
		f, err := s.captureFile(m.Name)
		if err == nil {
			defer f.Close()
			body = io.TeeReader(r.Body, f)
		}
	}
	// The first read answers Expect: 100-continue; the status follows as
	// soon as the first bytes arrive, before any fragment is complete.
	br := bufio.NewReaderSize(body, 64<<10)
	br.Peek(1)
	rd := mkv.NewReaderOptions(br, mkv.ReaderOptions{MaxElementSize: maxFragmentBytes})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	rc.Flush()
	in.acks = &ackWriter{w: w, rc: rc, last: time.Now(), stop: make(chan struct{})}
	go in.acks.idle(s.cfg.IdleAckInterval)
	defer close(in.acks.stop)
	ev, err := rd.NextEvent()

	for err == nil {
		if err = in.handle(ev); err != nil {
			break
		}
		select {
		case <-s.closing:
			return
		default:
		}
		ev, err = rd.NextEvent()
	}
	var ie *ingestError
	switch {
	case errors.Is(err, io.EOF):
		if ferr := in.finish(); ferr != nil {
			errors.As(ferr, &ie)
		}
	case errors.As(err, &ie):
	case isClientGone(err):
		s.log.Info("PutMedia connection ended", "stream", m.Name, "error", err)
		return
	default:
		ie = &ingestError{4006, "INVALID_MKV_DATA", in.curTC(), err.Error()}
	}
	if ie != nil {
		s.log.Info("PutMedia error", "stream", m.Name, "error_id", ie.id, "cause", ie.msg)
		in.acks.send(ack{EventType: "ERROR", FragmentTimecode: ie.tc, FragmentNumber: s.store.peekNumber(), ErrorID: ie.id, ErrorCode: ie.code})
	}
}

func isClientGone(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "use of closed")
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
		if err := in.finish(); err != nil {
			return err
		}
		h := ev.Header
		if len(h.Tracks) == 0 {
			return &ingestError{4006, "INVALID_MKV_DATA", 0, "segment without tracks"}
		}
		if len(h.Tracks) > maxTracks {
			return &ingestError{4012, "MORE_THAN_ALLOWED_TRACKS_FOUND", 0, fmt.Sprintf("%d tracks", len(h.Tracks))}
		}
		in.hdr = &mkv.SegmentHeader{TimecodeScale: h.TimecodeScale, Tracks: h.Tracks, Raw: append([]byte(nil), h.Raw...)}
		in.tracks = map[uint64]bool{}
		for _, t := range h.Tracks {
			in.tracks[t.Number] = true
		}
		in.scale = h.TimecodeScale
	case mkv.EventTags:
		eofr := false
		for _, t := range ev.Tags {
			if t.Name == mkv.TagEndOfFragment {
				eofr = true
			}
		}
		if eofr {
			return in.finish()
		}
		if in.cur != nil { // tags between clusters belong to the next fragment
			if err := in.finish(); err != nil {
				return err
			}
		}
		in.pendTags = append(in.pendTags, ev.TagsRaw...)
		in.pendCount += len(ev.Tags)
		if in.pendCount > maxFragmentTags {
			return &ingestError{4009, "FRAGMENT_METADATA_LIMIT_REACHED", 0, fmt.Sprintf("%d tags before one fragment", in.pendCount)}
		}
	case mkv.EventClusterStart:
		if in.hdr == nil {
			return &ingestError{4006, "INVALID_MKV_DATA", ev.Timecode, "cluster before the segment header"}
		}
		if err := in.finish(); err != nil {
			return err
		}
		if in.haveLast && ev.Timecode <= in.lastMaxTC {
			return &ingestError{4004, "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS", ev.Timecode,
				fmt.Sprintf("fragment timecode %d is not greater than the previous fragment's last frame %d", ev.Timecode, in.lastMaxTC)}
		}
		f := &fragmentState{tc: ev.Timecode, minTC: ev.Timecode, maxTC: ev.Timecode, tracks: map[uint64]bool{}, tagsCnt: in.pendCount}
		f.buf = append(f.buf, in.pendTags...)
		f.buf = mkv.AppendClusterStart(f.buf, ev.Timecode)
		in.pendTags, in.pendCount = nil, 0
		in.cur = f
		return in.ack("BUFFERING", f.tc, "")
	case mkv.EventBlock:
		f := in.cur
		if f == nil {
			return &ingestError{4006, "INVALID_MKV_DATA", 0, "block outside a cluster"}
		}
		b := ev.Block
		if !in.tracks[b.Track] {
			return &ingestError{4010, "TRACK_NUMBER_MISMATCH", f.tc, fmt.Sprintf("block for track %d, which the segment does not declare", b.Track)}
		}
		tc := int64(f.tc) + int64(b.RelTimecode)
		if tc < 0 {
			return &ingestError{4006, "INVALID_MKV_DATA", f.tc, "negative frame timecode"}
		}
		if uint64(tc) > f.maxTC {
			f.maxTC = uint64(tc)
		}
		if uint64(tc) < f.minTC {
			f.minTC = uint64(tc)
		}
		if time.Duration((f.maxTC-f.minTC)*in.scale) > maxFragmentDuration {
			return &ingestError{4002, "MAX_FRAGMENT_DURATION_REACHED", f.tc, "fragment longer than 10 s"}
		}
		f.buf = mkv.AppendSimpleBlock(f.buf, b.Track, b.RelTimecode, b.Flags, b.Data)
		if len(f.buf) > maxFragmentBytes {
			return &ingestError{4001, "MAX_FRAGMENT_SIZE_REACHED", f.tc, "fragment larger than 50 MB"}
		}
		f.frames++
		f.tracks[b.Track] = true
	}
	return nil
}

func (in *ingest) ack(typ string, tc uint64, number string) error {
	if !in.ackReq && typ != "ERROR" {
		return nil
	}
	f := in.s.getFaults()
	if f.WithholdAcks && (typ == "RECEIVED" || typ == "PERSISTED") {
		return nil
	}
	if number == "" {
		number = in.s.store.peekNumber()
	}
	return in.acks.send(ack{EventType: typ, FragmentTimecode: tc, FragmentNumber: number})
}

// finish completes the current fragment: RECEIVED, durable storage, then
// PERSISTED (when the stream retains data).
func (in *ingest) finish() error {
	f := in.cur
	if f == nil {
		return nil
	}
	in.cur = nil
	if f.frames == 0 {
		return &ingestError{4011, "FRAMES_MISSING_FOR_TRACK", f.tc, "fragment without frames"}
	}
	for t := range in.tracks {
		if !f.tracks[t] && len(in.tracks) > 1 {
			return &ingestError{4011, "FRAMES_MISSING_FOR_TRACK", f.tc, fmt.Sprintf("no frames for track %d", t)}
		}
	}
	in.lastMaxTC, in.haveLast = f.maxTC, true
	now := in.s.cfg.Now()
	prod := time.Unix(0, int64(f.tc*in.scale))
	if in.relative {
		prod = in.start.Add(time.Duration(f.tc * in.scale))
	}
	fi := FragmentInfo{ProducerTimestamp: prod, ServerTimestamp: now, Timecode: f.tc, TimecodeScale: in.scale,
		DurationMillis: int64(time.Duration((f.maxTC-f.minTC)*in.scale) / time.Millisecond), Frames: f.frames,
		HeaderSize: int64(len(in.hdr.Raw))}
	data := make([]byte, 0, len(in.hdr.Raw)+len(f.buf))
	data = append(append(data, in.hdr.Raw...), f.buf...)
	stored, err := in.s.store.putFragment(in.stream.Name, fi, data)
	if err != nil {
		in.s.log.Error("storing fragment", "stream", in.stream.Name, "error", err)
		return &ingestError{5001, "ARCHIVAL_ERROR", f.tc, "could not store the fragment"}
	}
	if err := in.ack("RECEIVED", f.tc, stored.Number); err != nil {
		return err
	}
	if in.stream.RetentionHours > 0 {
		return in.ack("PERSISTED", f.tc, stored.Number)
	}
	return nil
}

// acquire allows one PutMedia connection per stream at a time, as the
// service does (it throttles the newest with ConnectionLimitExceeded).
func (s *Server) acquire(stream string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		s.active = map[string]bool{}
	}
	if s.active[stream] {
		return false
	}
	s.active[stream] = true
	return true
}

func (s *Server) release(stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, stream)
}

func (s *Server) captureFile(stream string) (*os.File, error) {
	dir := filepath.Join(s.cfg.Dir, "captures", stream)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.captures++
	n := s.captures
	s.mu.Unlock()
	return os.Create(filepath.Join(dir, fmt.Sprintf("%06d.mkv", n)))
}
