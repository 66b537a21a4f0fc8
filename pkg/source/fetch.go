package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// fetcher reads the service's responses and writes each fragment once, in
// order, to w: its segment head and Tags as received, then its Cluster
// (unknown size) and blocks. Across reconnections it remembers the last
// complete fragment (done) and how many blocks of the fragment in progress
// it wrote (cur), so that a resumed response neither repeats nor loses a
// frame.
type fetcher struct {
	s *Source
	w io.Writer

	token string   // the latest continuation token
	done  string   // number of the last fragment written completely
	cur   progress // the fragment being written

	lastCluster *uint64 // timecode of the last cluster written

	lastFrame atomic.Int64 // unix ns of the last frame written (or of the start)
	frames    int64
	buf       []byte
}

// progress is the fragment being written.
type progress struct {
	number  string
	started bool // its head and cluster start are written
	blocks  int  // blocks written
}

// maxBackoff caps the wait between reconnections.
const (
	firstBackoff = 200 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

func (f *fetcher) run(ctx context.Context) error {
	f.lastFrame.Store(f.s.cfg.Clock.Now().UnixNano())
	if f.s.cfg.Archive != nil {
		return f.runArchive(ctx)
	}
	return f.runLive(ctx)
}

// sinceFrame is how long ago the last frame was written.
func (f *fetcher) sinceFrame() time.Duration {
	return f.s.cfg.Clock.Now().Sub(time.Unix(0, f.lastFrame.Load()))
}

// retry decides after a failed or ended attempt: nil to go on (after a
// backoff), or the error that ends reading.
func (f *fetcher) retry(ctx context.Context, err error, attempt int) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil && !retriable(err) {
		return err
	}
	if err != nil && f.sinceFrame() > f.s.cfg.ReconnectTimeout {
		return fmt.Errorf("%w after %d attempts without a frame for %v: %w", ErrGaveUp, attempt, f.s.cfg.ReconnectTimeout, err)
	}
	after := f.token
	if f.s.cfg.Archive != nil {
		after = f.done
	}
	f.s.event(Event{Kind: EventResume, Token: after, Attempt: attempt, Err: err})
	if err == nil {
		return nil // the service ended the response: reconnect at once
	}
	d := firstBackoff << min(attempt-1, 5)
	d = min(d, maxBackoff)
	select {
	case <-f.s.cfg.Clock.After(d):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// retriable tells a failure worth another connection from one that needs a
// change of configuration (no such stream, access denied, a selector the
// service rejects, a fragment it cannot return).
func retriable(err error) bool {
	var fe *FragmentError
	if errors.As(err, &fe) {
		return fe.Retriable()
	}
	var ae *kvs.APIError
	if errors.As(err, &ae) {
		return ae.Retryable()
	}
	var se *mkv.SyntaxError
	if errors.As(err, &se) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false // the service sent something that is not Matroska
	}
	return !errors.Is(err, ErrSettings) && !errors.Is(err, ErrBadMedia)
}

// maxTrack is the largest track number a SimpleBlock header of one byte
// carries, as the writer emits them.
const maxTrack = 126

func (f *fetcher) runLive(ctx context.Context) error {
	cfg := &f.s.cfg
	var dataEP string
	var since time.Time // NOW: when the first request went out
	for attempt := 0; ; {
		var err error
		if dataEP == "" {
			dataEP, err = f.s.ctl.GetDataEndpoint(ctx, cfg.StreamName, "GET_MEDIA")
		}
		before := f.frames
		if err == nil {
			sel := cfg.Start
			switch {
			case f.token != "":
				sel = kvs.StartSelector{Type: "CONTINUATION_TOKEN", ContinuationToken: f.token}
			case sel.Type == "NOW" && !since.IsZero():
				// No fragment yet: what came since the first request,
				// rather than NOW again, which would skip what arrived
				// while reconnecting.
				sel = kvs.StartSelector{Type: "SERVER_TIMESTAMP", StartTimestamp: since}
			case sel.Type == "NOW":
				since = cfg.Clock.Now()
			}
			err = f.read(ctx, func(ctx context.Context) (io.ReadCloser, error) {
				return kvs.GetMedia(ctx, kvs.GetMediaConfig{Endpoint: dataEP, StreamName: cfg.StreamName, Region: cfg.Region,
					Credentials: cfg.Credentials, HTTPClient: cfg.HTTPClient, Start: sel})
			})
			if err != nil && !isAPIError(err) {
				dataEP = "" // the endpoint may have moved
			}
		}
		if errors.Is(err, errIdle) || (err == nil && cfg.IdleTimeout > 0 && f.sinceFrame() >= cfg.IdleTimeout) {
			cfg.Logger.Info("no new frame: end of the live stream", "stream", cfg.StreamName, "idle", cfg.IdleTimeout, "frames", f.frames)
			return nil
		}
		if f.sinceFrame() < time.Second {
			attempt = 0 // frames came: count afresh
		}
		attempt++
		if err := f.retry(ctx, err, attempt); err != nil {
			return err
		}
		if err == nil && f.frames == before {
			// The service ended a response that brought nothing: do not
			// ask again at once.
			select {
			case <-cfg.Clock.After(emptyPause):
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
	}
}

// emptyPause is the wait before asking again after a response without a
// frame (a service that ends idle responses at once must not be polled in
// a loop).
const emptyPause = time.Second

func isAPIError(err error) bool {
	var ae *kvs.APIError
	return errors.As(err, &ae)
}

// errIdle: IdleTimeout passed without a frame while a response was open.
var errIdle = errors.New("source: idle")

// runArchive writes the fragments of the archived range, from the one
// SeekTo points at, a batch per GetMediaForFragmentList response.
func (f *fetcher) runArchive(ctx context.Context) error {
	cfg := &f.s.cfg
	list, err := f.listArchive(ctx)
	if err != nil {
		return err
	}
	first := seekIndex(list, cfg.SeekTo, cfg.Archive.ServerTimestamps)
	var dataEP string
	for attempt := 0; ; {
		nums := f.nextBatch(list, first)
		if nums == nil {
			return nil
		}
		var err error
		if dataEP == "" {
			dataEP, err = f.s.ctl.GetDataEndpoint(ctx, cfg.StreamName, "GET_MEDIA_FOR_FRAGMENT_LIST")
		}
		if err == nil {
			err = f.read(ctx, func(ctx context.Context) (io.ReadCloser, error) {
				return kvs.GetMediaForFragmentList(ctx, f.archiveConfig(dataEP), nums)
			})
			if err == nil && f.done != nums[len(nums)-1] {
				err = fmt.Errorf("GetMediaForFragmentList: the response ended before fragment %s", nums[len(nums)-1])
			}
			if err != nil && !isAPIError(err) {
				dataEP = ""
			}
		}
		if err == nil {
			attempt = 0
			continue
		}
		if f.sinceFrame() < time.Second {
			attempt = 0
		}
		attempt++
		if err := f.retry(ctx, err, attempt); err != nil {
			return err
		}
	}
}

// archiveConfig is the configuration of the archived-media calls to
// endpoint ep.
func (f *fetcher) archiveConfig(ep string) kvs.ArchiveConfig {
	cfg := &f.s.cfg
	return kvs.ArchiveConfig{Endpoint: ep, StreamName: cfg.StreamName, Region: cfg.Region,
		Credentials: cfg.Credentials, HTTPClient: cfg.HTTPClient}
}

// listArchive lists the fragments of the archived range (retrying as
// Config says), records the list in the Source, and fails with
// ErrNoFragments if the range holds none.
func (f *fetcher) listArchive(ctx context.Context) ([]kvs.FragmentInfo, error) {
	cfg := &f.s.cfg
	a := cfg.Archive
	var list []kvs.FragmentInfo
	listed := false
	for attempt := 1; !listed; attempt++ {
		err := func() error {
			ep, err := f.s.ctl.GetDataEndpoint(ctx, cfg.StreamName, "LIST_FRAGMENTS")
			if err != nil {
				return err
			}
			lctx, cancel := context.WithTimeout(ctx, cfg.CompletionTimeout)
			defer cancel()
			l, err := kvs.ListFragments(lctx, f.archiveConfig(ep), kvs.ListFragmentsInput{ServerTimestamps: a.ServerTimestamps, Start: a.Start, End: a.End})
			if err != nil {
				return err
			}
			list, listed = l, true
			return nil
		}()
		if err != nil {
			if err := f.retry(ctx, err, attempt); err != nil {
				return nil, err
			}
		}
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w %s to %s (stream %s)", ErrNoFragments, a.Start.UTC().Format(time.RFC3339Nano), a.End.UTC().Format(time.RFC3339Nano), cfg.StreamName)
	}
	cfg.Logger.Info("archived range", "stream", cfg.StreamName, "fragments", len(list))
	f.s.mu.Lock()
	if f.s.list == nil {
		f.s.list = list
	}
	f.s.mu.Unlock()
	return list, nil
}

// seekIndex is the index in list of the last fragment that starts at or
// before seekTo after the first one's start (by server timestamps if
// server), or 0.
func seekIndex(list []kvs.FragmentInfo, seekTo time.Duration, server bool) int {
	first := 0
	if seekTo > 0 {
		target := list[0].ProducerTimestamp.Add(seekTo)
		if server {
			target = list[0].ServerTimestamp.Add(seekTo)
		}
		for i, fr := range list {
			ts := fr.ProducerTimestamp
			if server {
				ts = fr.ServerTimestamp
			}
			if !ts.After(target) {
				first = i
			}
		}
	}
	return first
}

// nextBatch is the numbers of the next fragments of list to ask for: those
// after the last complete one (from first, if none is), at most
// Config.Batch of them; nil when none are left.
func (f *fetcher) nextBatch(list []kvs.FragmentInfo, first int) []string {
	next := first
	if f.done != "" {
		for i, fr := range list {
			if fr.Number == f.done {
				next = i + 1
			}
		}
	}
	if next == len(list) {
		return nil
	}
	batch := list[next:min(next+f.s.cfg.Batch, len(list))]
	nums := make([]string, len(batch))
	for i, fr := range batch {
		nums[i] = fr.Number
	}
	return nums
}

// read opens one response and writes what it carries. It returns nil when
// the response ended cleanly, errIdle when IdleTimeout passed without a
// frame, and otherwise why it broke off.
func (f *fetcher) read(ctx context.Context, open func(context.Context) (io.ReadCloser, error)) error {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	defer close(stop)
	if idle := f.s.cfg.IdleTimeout; idle > 0 && f.s.cfg.Archive == nil {
		// A watchdog: a response that stays open without a frame ends
		// after IdleTimeout.
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-f.s.cfg.Clock.After(max(idle/8, 10*time.Millisecond)):
					if f.sinceFrame() >= idle {
						cancel(errIdle)
						return
					}
				}
			}
		}()
	}
	body, err := open(rctx)
	if err != nil {
		if context.Cause(rctx) == errIdle {
			return errIdle
		}
		return err
	}
	defer body.Close()
	err = f.consume(body)
	if context.Cause(rctx) == errIdle {
		return errIdle
	}
	if err != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// consume writes the fragments of one response.
func (f *fetcher) consume(body io.Reader) error {
	rd := mkv.NewReader(body)
	rs := &response{f: f}
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			rs.end()
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the response of stream %s: %w", f.s.cfg.StreamName, err)
		}
		if err := rs.handle(ev); err != nil {
			return err
		}
	}
}

// response is what consume knows of the response it reads.
type response struct {
	f *fetcher

	head       []byte   // the segment head just read
	tags       [][]byte // Tags before the cluster
	number     string
	inCluster  bool
	skip       bool // a fragment already written completely
	skipBlocks int  // blocks of a resumed fragment already written
	here       bool // f.cur's cluster is in this response
}

// end completes f.cur if this response carried its cluster to the end.
func (rs *response) end() {
	if rs.here {
		rs.f.complete()
	}
	rs.here = false
}

// handle writes what one event of the response adds to the output.
func (rs *response) handle(ev mkv.Event) error {
	switch ev.Kind {
	case mkv.EventSegmentStart:
		rs.end()
		rs.head, rs.tags, rs.number, rs.inCluster, rs.skip, rs.skipBlocks = ev.Header.Raw, nil, "", false, false, 0
	case mkv.EventTags:
		return rs.onTags(ev)
	case mkv.EventClusterStart:
		return rs.clusterStart(ev.Timecode)
	case mkv.EventBlock:
		return rs.block(ev)
	}
	return nil
}

// onTags reads the service's tags: an error it reports, the continuation
// token, the fragment number. Tags before the cluster are kept to be
// written with it; those after it end the fragment, and are written when
// this response carried the fragment.
func (rs *response) onTags(ev mkv.Event) error {
	f := rs.f
	meta := map[string]string{}
	for _, t := range ev.Tags {
		meta[t.Name] = t.Value
	}
	if code, ok := meta[mkv.TagErrorCode]; ok || meta[mkv.TagErrorID] != "" {
		id, _ := strconv.Atoi(meta[mkv.TagErrorID])
		n := meta[mkv.TagFragmentNumber]
		if n == "" {
			n = rs.number
		}
		return &FragmentError{Number: n, Code: code, ID: id}
	}
	if tok := meta[mkv.TagContinuationToken]; tok != "" {
		f.token = tok
	}
	if rs.inCluster {
		if rs.here && !rs.skip {
			// The service's end-of-fragment tags (millis behind now,
			// continuation token) follow the fragment's frames.
			if _, err := f.w.Write(ev.TagsRaw); err != nil {
				return err
			}
		}
		if meta[mkv.TagContinuationToken] != "" {
			rs.end()
		}
		return nil
	}
	if n := meta[mkv.TagFragmentNumber]; n != "" {
		rs.number = n
	}
	rs.tags = append(rs.tags, append([]byte(nil), ev.TagsRaw...))
	return nil
}

// clusterStart decides what to do with the fragment whose cluster starts:
// skip it (written already), resume it, or start writing it.
func (rs *response) clusterStart(timecode uint64) error {
	f := rs.f
	rs.inCluster = true
	switch {
	case rs.number != "" && f.done != "" && kvs.CompareFragmentNumbers(rs.number, f.done) <= 0:
		rs.skip = true
	case rs.number != "" && f.cur.started && rs.number == f.cur.number:
		rs.skipBlocks = f.cur.blocks // resumed inside this fragment
		rs.here = true
	case f.lastCluster != nil && timecode <= *f.lastCluster:
		// A producer that resent a fragment the service had stored
		// already (its acknowledgement was lost): the same frames under
		// another fragment number.
		rs.skip = true
		f.s.cfg.Logger.Info("skipping a fragment that does not start after the previous one (resent by the producer)",
			"fragment", rs.number, "timecode", timecode, "previous", *f.lastCluster)
	default:
		return rs.startFragment(timecode)
	}
	return nil
}

// startFragment writes a new fragment's head, its Tags and its Cluster
// start.
func (rs *response) startFragment(timecode uint64) error {
	f := rs.f
	f.complete()
	f.cur = progress{number: rs.number, started: true}
	rs.here = true
	tc := timecode
	f.lastCluster = &tc
	b := append(f.buf[:0], rs.head...)
	for _, t := range rs.tags {
		b = append(b, t...)
	}
	b = mkv.AppendClusterStart(b, timecode)
	f.buf = b
	_, err := f.w.Write(b)
	return err
}

// block writes a block of the fragment being written, unless it was
// written already.
func (rs *response) block(ev mkv.Event) error {
	f := rs.f
	if rs.skip || !rs.inCluster || !f.cur.started {
		return nil
	}
	if rs.skipBlocks > 0 {
		rs.skipBlocks--
		return nil
	}
	b := ev.Block
	if b.Track < 1 || b.Track > maxTrack {
		return fmt.Errorf("%w: a block of track %d at offset %d (tracks 1 to %d)", ErrBadMedia, b.Track, ev.Offset, maxTrack)
	}
	flags := b.Flags
	if b.Keyframe {
		flags |= 0x80
	}
	f.buf = mkv.AppendSimpleBlock(f.buf[:0], b.Track, b.RelTimecode, flags, b.Data)
	if _, err := f.w.Write(f.buf); err != nil {
		return err
	}
	f.cur.blocks++
	f.frames++
	f.lastFrame.Store(f.s.cfg.Clock.Now().UnixNano())
	return nil
}

// complete marks the fragment being written as done.
func (f *fetcher) complete() {
	if f.cur.started && f.cur.number != "" {
		f.done = f.cur.number
	}
	f.cur = progress{}
}
