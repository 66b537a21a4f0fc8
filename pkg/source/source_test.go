package source

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/mkv"
)

// fakeService serves GetDataEndpoint, GetMedia, ListFragments and
// GetMediaForFragmentList over a fixed set of fragments, laid out as the
// service does: one segment per fragment with the AWS_KINESISVIDEO_* tags.
type fakeService struct {
	t     *testing.T
	srv   *httptest.Server
	frags []fakeFragment

	mu sync.Mutex
	// drops: the n-th GetMedia/GetMediaForFragmentList request (from 0)
	// breaks off after that many blocks.
	drops    map[int]int
	requests []string // the selector or fragment list of each media request
	// live: GetMedia serves only the first `visible` fragments, then ends
	// the response as the service does when no fragment comes.
	visible int
	// change: fragments from this index on have another CodecPrivate.
	change int
	// errorAt: the fragment at this index is an error chunk (ID 4000).
	errorAt int
	// deletedAfter: media requests from this one on (when > 0) find no
	// stream.
	deletedAfter int
}

type fakeFragment struct {
	number   string
	tc       uint64 // cluster timecode (ms)
	producer time.Time
	frames   [][]byte
}

const fakeFrames = 5 // frames per fragment, 100 ms apart

func newFakeService(t *testing.T, n int) *fakeService {
	f := &fakeService{t: t, drops: map[int]int{}, visible: n, change: -1, errorAt: -1}
	base := uint64(1_800_000_000_000)
	for i := 0; i < n; i++ {
		fr := fakeFragment{number: fmt.Sprintf("9134385233318143239268206260774392014615916%04d", i), tc: base + uint64(i)*500,
			producer: time.UnixMilli(int64(base + uint64(i)*500))}
		for k := 0; k < fakeFrames; k++ {
			fr.frames = append(fr.frames, []byte(fmt.Sprintf("frame %d.%d %s", i, k, strings.Repeat("x", 50+i+k))))
		}
		f.frags = append(f.frags, fr)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeService) header(i int) []byte {
	cp := []byte{1, 2, 3}
	if f.change >= 0 && i >= f.change {
		cp = []byte{4, 5, 6}
	}
	return mkv.AppendHeader(nil, &mkv.Header{TimecodeScale: 1_000_000, Tracks: []mkv.Track{{Number: 1, UID: 1, Type: 1, CodecID: "V_MPEG4/ISO/AVC", CodecPrivate: cp, PixelWidth: 64, PixelHeight: 48}}})
}

// write writes fragment i, breaking off after limit blocks (limit < 0:
// whole); it reports whether it wrote it whole.
func (f *fakeService) write(w io.Writer, i, limit int, getMedia bool) bool {
	fr := f.frags[i]
	var b []byte
	b = append(b, f.header(i)...)
	if i == f.errorAt {
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: mkv.TagFragmentNumber, Value: fr.number}, {Name: mkv.TagErrorCode, Value: "MISSING_FRAGMENT"}, {Name: mkv.TagErrorID, Value: "4000"}})
		w.Write(b)
		return true
	}
	b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: mkv.TagFragmentNumber, Value: fr.number},
		{Name: mkv.TagServerTimestamp, Value: fmt.Sprintf("%d.%03d", fr.producer.Unix()+1, fr.producer.UnixMilli()%1000)},
		{Name: mkv.TagProducerTimestamp, Value: fmt.Sprintf("%d.%03d", fr.producer.Unix(), fr.producer.UnixMilli()%1000)}})
	b = mkv.AppendClusterStart(b, fr.tc)
	for k, d := range fr.frames {
		if limit >= 0 && k == limit {
			w.Write(b)
			return false
		}
		flags := byte(0)
		if k == 0 {
			flags = 0x80
		}
		b = mkv.AppendSimpleBlock(b, 1, int16(k*100), flags, d)
	}
	if getMedia {
		b = mkv.AppendTags(b, []mkv.SimpleTag{{Name: mkv.TagMillisBehindNow, Value: "1200"}, {Name: mkv.TagContinuationToken, Value: fr.number}})
	}
	w.Write(b)
	return true
}

// mediaRequest is the body of a GetMedia or GetMediaForFragmentList
// request, as far as the fake reads it.
type mediaRequest struct {
	Fragments []string
	Sel       struct {
		StartSelectorType string
		ContinuationToken string
	} `json:"StartSelector"`
}

func (f *fakeService) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/getDataEndpoint":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"DataEndpoint":%q}`, f.srv.URL)
		return
	case "/listFragments":
		f.listFragments(w, body)
		return
	}
	var in mediaRequest
	json.Unmarshal(body, &in)
	f.mu.Lock()
	n := len(f.requests)
	if f.deletedAfter > 0 && n >= f.deletedAfter {
		f.mu.Unlock()
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(404)
		io.WriteString(w, `{"message":"The requested stream is not found or not active."}`)
		return
	}
	limitAfter, dropping := f.drops[n]
	visible := f.visible
	f.mu.Unlock()
	getMedia := r.URL.Path == "/getMedia"
	idx := f.requested(in, getMedia, visible)
	w.WriteHeader(200)
	blocks := 0
	for _, i := range idx {
		limit := -1
		if dropping {
			limit = limitAfter - blocks
		}
		if !f.write(w, i, limit, getMedia) {
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // a dropped connection
		}
		blocks += fakeFrames
		if i == f.errorAt {
			return
		}
	}
}

// listFragments answers ListFragments with the fragments in the requested
// producer-time range, in reverse order.
func (f *fakeService) listFragments(w http.ResponseWriter, body []byte) {
	var sel struct {
		FragmentSelector struct {
			TimestampRange struct{ StartTimestamp, EndTimestamp float64 }
		}
	}
	json.Unmarshal(body, &sel)
	from := time.UnixMilli(int64(sel.FragmentSelector.TimestampRange.StartTimestamp * 1000))
	to := time.UnixMilli(int64(sel.FragmentSelector.TimestampRange.EndTimestamp * 1000))
	list := []string{}
	for _, fr := range f.frags {
		if fr.producer.Before(from) || fr.producer.After(to) {
			continue
		}
		list = append(list, fmt.Sprintf(`{"FragmentNumber":%q,"FragmentSizeInBytes":100,"ProducerTimestamp":%d.%03d,"ServerTimestamp":%d.%03d,"FragmentLengthInMilliseconds":500}`,
			fr.number, fr.producer.Unix(), fr.producer.UnixMilli()%1000, fr.producer.Unix()+1, fr.producer.UnixMilli()%1000))
	}
	// Reverse order: the client must sort.
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 {
		list[i], list[j] = list[j], list[i]
	}
	fmt.Fprintf(w, `{"Fragments":[%s]}`, strings.Join(list, ","))
}

// requested records a media request and returns the indexes of the
// fragments it asks for: for GetMedia, those after its continuation token
// (or the visible end, for NOW) up to visible; else those it lists.
func (f *fakeService) requested(in mediaRequest, getMedia bool, visible int) []int {
	var idx []int
	if getMedia {
		f.mu.Lock()
		f.requests = append(f.requests, in.Sel.StartSelectorType+":"+in.Sel.ContinuationToken)
		f.mu.Unlock()
		start := 0
		switch in.Sel.StartSelectorType {
		case "CONTINUATION_TOKEN":
			start = len(f.frags)
			for i, fr := range f.frags {
				if fr.number > in.Sel.ContinuationToken {
					start = i
					break
				}
			}
		case "NOW":
			start = visible
		}
		for i := start; i < visible; i++ {
			idx = append(idx, i)
		}
		return idx
	}
	f.mu.Lock()
	f.requests = append(f.requests, strings.Join(in.Fragments, ","))
	f.mu.Unlock()
	for _, num := range in.Fragments {
		for i, fr := range f.frags {
			if fr.number == num {
				idx = append(idx, i)
			}
		}
	}
	return idx
}

// out decodes what a Source emitted: the frames in order, and the number of
// segments (must be 1).
type out struct {
	segments int
	frames   []string
	pts      []int64
}

func decode(t *testing.T, b []byte) out {
	t.Helper()
	var o out
	rd := mkv.NewReader(bytes.NewReader(b))
	var cluster uint64
	for {
		ev, err := rd.NextEvent()
		if err == io.EOF {
			return o
		}
		if err != nil {
			t.Fatalf("output is not Matroska: %v", err)
		}
		switch ev.Kind {
		case mkv.EventSegmentStart:
			o.segments++
		case mkv.EventClusterStart:
			cluster = ev.Timecode
		case mkv.EventBlock:
			o.frames = append(o.frames, string(ev.Block.Data))
			o.pts = append(o.pts, int64(cluster)+int64(ev.Block.RelTimecode))
		}
	}
}

func (f *fakeService) config() Config {
	return Config{StreamName: "cam1", Region: "us-west-2", Endpoint: f.srv.URL,
		Credentials: aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, nil
		})),
		Start: kvs.StartSelector{Type: "EARLIEST"}, IdleTimeout: 300 * time.Millisecond}
}

func (f *fakeService) want(from int) []string {
	var w []string
	for _, fr := range f.frags[from:] {
		for _, d := range fr.frames {
			w = append(w, string(d))
		}
	}
	return w
}

func run(t *testing.T, cfg Config) (out, []Event, error) {
	t.Helper()
	var mu sync.Mutex
	var events []Event
	cfg.OnEvent = func(ev Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = s.Run(ctx, func(b []byte) error { buf.Write(b); return nil })
	if ctx.Err() != nil {
		t.Fatal("Run did not end within 60 s")
	}
	mu.Lock()
	defer mu.Unlock()
	return decode(t, buf.Bytes()), events, err
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d:\n got %q\nwant %q", len(got), len(want), got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("frame %d is %q, want %q", i, got[i], want[i])
		}
	}
}

func count(evs []Event, k EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func TestLiveReadsEveryFrameOnceIntoOneSegment(t *testing.T) {
	f := newFakeService(t, 6)
	o, evs, err := run(t, f.config())
	if err != nil {
		t.Fatal(err)
	}
	if o.segments != 1 {
		t.Errorf("%d segments, want 1", o.segments)
	}
	equal(t, o.frames, f.want(0))
	if o.pts[0] != 0 || o.pts[len(o.pts)-1] != 5*500+400 {
		t.Errorf("timecodes %v, want 0 .. 2900", o.pts)
	}
	if n := count(evs, EventFragment); n != 6 {
		t.Errorf("%d fragment events, want 6", n)
	}
	fe := evs[0]
	if fe.Number != f.frags[0].number || !fe.Producer.Equal(f.frags[0].producer) || fe.MillisBehindNow != 1200 {
		t.Errorf("first fragment event %+v", fe)
	}
}

func TestLiveResumesInsideAFragmentWithoutRepeatOrLoss(t *testing.T) {
	for _, cut := range []int{0, 1, 7, 12, 15, 29} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			f := newFakeService(t, 6)
			f.drops[0] = cut     // the first response breaks off after cut blocks
			f.drops[1] = cut + 3 // and the second a bit later
			o, evs, err := run(t, f.config())
			if err != nil {
				t.Fatal(err)
			}
			if o.segments != 1 {
				t.Errorf("%d segments", o.segments)
			}
			equal(t, o.frames, f.want(0))
			if count(evs, EventResume) < 2 {
				t.Errorf("%d resume events, want at least 2", count(evs, EventResume))
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.requests[0] != "EARLIEST:" || (cut >= fakeFrames && !strings.HasPrefix(f.requests[1], "CONTINUATION_TOKEN:")) {
				t.Errorf("requests %q", f.requests)
			}
		})
	}
}

func TestLiveResumesAfterTheServiceEndsTheResponse(t *testing.T) {
	f := newFakeService(t, 6)
	f.visible = 3
	cfg := f.config()
	cfg.IdleTimeout = 3 * time.Second
	go func() {
		// More fragments arrive after the first response ended.
		time.Sleep(300 * time.Millisecond)
		f.mu.Lock()
		f.visible = 6
		f.mu.Unlock()
	}()
	o, _, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, o.frames, f.want(0))
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) < 2 || f.requests[1] != "CONTINUATION_TOKEN:"+f.frags[2].number {
		t.Errorf("requests %q, want a resume after fragment 2", f.requests)
	}
}

func TestLiveFromNowResumesFromTheFirstRequestTime(t *testing.T) {
	f := newFakeService(t, 3)
	f.visible = 0
	cfg := f.config()
	cfg.Start = kvs.StartSelector{Type: "NOW"}
	cfg.IdleTimeout = 1500 * time.Millisecond
	_, _, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) < 2 || f.requests[0] != "NOW:" || f.requests[1] != "SERVER_TIMESTAMP:" {
		t.Errorf("requests %q, want NOW then SERVER_TIMESTAMP", f.requests)
	}
	if len(f.requests) > 3 {
		t.Errorf("%d requests in 1.5 s: responses without a frame must not be repeated at once", len(f.requests))
	}
}

func TestArchivedRangeInBatchesWithResume(t *testing.T) {
	f := newFakeService(t, 7)
	f.drops[1] = 3 // the second batch breaks off
	cfg := f.config()
	cfg.Archive = &Range{Start: f.frags[0].producer, End: f.frags[6].producer}
	cfg.Batch = 3
	o, evs, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, o.frames, f.want(0))
	if o.segments != 1 || count(evs, EventFragment) != 7 {
		t.Errorf("%d segments, %d fragment events", o.segments, count(evs, EventFragment))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 4 || f.requests[2] != strings.Join([]string{f.frags[3].number, f.frags[4].number, f.frags[5].number}, ",") {
		t.Errorf("requests %q", f.requests)
	}
}

func TestArchivedOriginKeepsTimesAcrossRuns(t *testing.T) {
	f := newFakeService(t, 6)
	cfg := f.config()
	cfg.Archive = &Range{Start: f.frags[0].producer, End: f.frags[5].producer}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background(), func([]byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	// A second run from fragment 3 (a seek) with the first run's origin.
	cfg.Archive = &Range{Start: f.frags[3].producer, End: f.frags[5].producer}
	cfg.Origin = s.Origin()
	o, _, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, o.frames, f.want(3))
	if o.pts[0] != 3*500 {
		t.Errorf("first timecode %d, want 1500", o.pts[0])
	}
}

func TestResentFragmentsAreSkipped(t *testing.T) {
	f := newFakeService(t, 5)
	// Fragment 3 is fragment 2 again under another number, as a producer
	// that resent it after a lost acknowledgement makes it.
	f.frags[3].tc, f.frags[3].frames = f.frags[2].tc, f.frags[2].frames
	o, _, err := run(t, f.config())
	if err != nil {
		t.Fatal(err)
	}
	want := f.want(0)
	want = append(want[:3*fakeFrames], want[4*fakeFrames:]...)
	equal(t, o.frames, want)
}

func TestArchivedSeekStartsAtTheFragmentHoldingTheTarget(t *testing.T) {
	f := newFakeService(t, 6)
	cfg := f.config()
	cfg.Archive = &Range{Start: f.frags[0].producer, End: f.frags[5].producer}
	origin := f.frags[0].tc
	cfg.Origin = &origin
	cfg.SeekTo = 1700 * time.Millisecond // inside fragment 3 (1500 to 1999 ms)
	o, evs, err := run(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, o.frames, f.want(3))
	if o.pts[0] != 1500 || evs[0].Number != f.frags[3].number {
		t.Errorf("first timecode %d, first fragment %s: want 1500 and fragment 3", o.pts[0], evs[0].Number)
	}
}

// TestArchivedIndex: archived output carries a duration and an index whose
// virtual cluster offsets map back to their fragments.
func TestArchivedIndex(t *testing.T) {
	f := newFakeService(t, 6)
	cfg := f.config()
	cfg.Archive = &Range{Start: f.frags[0].producer, End: f.frags[5].producer}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := s.Run(context.Background(), func(b []byte) error { out.Write(b); return nil }); err != nil {
		t.Fatal(err)
	}
	b := out.Bytes()
	data := int64(segmentData(b))
	if data <= 0 {
		t.Fatal("no segment start in the output")
	}
	// Duration (0x4489, float 3000 ms) and six CuePoints (0xBB).
	if !bytes.Contains(b, []byte{0x44, 0x89, 0x88, 0x40, 0xa7, 0x70, 0, 0, 0, 0, 0}) {
		t.Error("no Duration of 3000 ms in the output's Info")
	}
	for i := 0; i < 6; i++ {
		got, ok := s.SeekOffset(data + cueBase + int64(i)*cueStep)
		if !ok || got != time.Duration(i)*500*time.Millisecond {
			t.Errorf("cue %d: %v %v, want %v", i, got, ok, time.Duration(i)*500*time.Millisecond)
		}
	}
	for _, off := range []int64{0, data, data + cueBase + 1, data + cueBase + 6*cueStep, -1} {
		if _, ok := s.SeekOffset(off); ok {
			t.Errorf("offset %d maps to a fragment", off)
		}
	}
	if o := decode(t, b); o.segments != 1 || len(o.frames) != 30 {
		t.Errorf("%d segments, %d frames", o.segments, len(o.frames))
	}
}

func TestGapsAreReported(t *testing.T) {
	f := newFakeService(t, 4)
	f.frags[2].tc += 2000
	f.frags[3].tc += 2000
	_, evs, err := run(t, f.config())
	if err != nil {
		t.Fatal(err)
	}
	var gaps []Event
	for _, e := range evs {
		if e.Kind == EventGap {
			gaps = append(gaps, e)
		}
	}
	if len(gaps) != 1 || gaps[0].GapFrom != 900*time.Millisecond || gaps[0].GapTo != 3000*time.Millisecond || gaps[0].Number != f.frags[2].number {
		t.Errorf("gaps %+v, want one from 900ms to 3s", gaps)
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	t.Run("tracks change", func(t *testing.T) {
		f := newFakeService(t, 4)
		f.change = 2
		o, _, err := run(t, f.config())
		if !errors.Is(err, ErrTracksChanged) || !strings.Contains(err.Error(), f.frags[2].number) {
			t.Fatalf("err %v, want ErrTracksChanged naming fragment 2", err)
		}
		equal(t, o.frames, f.want(0)[:2*fakeFrames])
	})
	t.Run("fragment error", func(t *testing.T) {
		f := newFakeService(t, 4)
		f.errorAt = 1
		_, _, err := run(t, f.config())
		var fe *FragmentError
		if !errors.As(err, &fe) || fe.ID != 4000 || fe.Number != f.frags[1].number {
			t.Fatalf("err %v, want a FragmentError 4000", err)
		}
	})
	t.Run("stream deleted mid-read", func(t *testing.T) {
		f := newFakeService(t, 4)
		f.drops[0] = 7     // the connection drops in fragment 1 ...
		f.deletedAfter = 1 // ... and the stream is gone when the source reconnects
		o, evs, err := run(t, f.config())
		if !errors.Is(err, kvs.ErrStreamNotFound) {
			t.Fatalf("err %v, want ErrStreamNotFound", err)
		}
		equal(t, o.frames, f.want(0)[:7])
		if count(evs, EventResume) != 1 {
			t.Errorf("%d resume events, want 1", count(evs, EventResume))
		}
	})
	t.Run("empty range", func(t *testing.T) {
		f := newFakeService(t, 0)
		cfg := f.config()
		cfg.Archive = &Range{Start: time.Unix(100, 0), End: time.Unix(200, 0)}
		_, _, err := run(t, cfg)
		if !errors.Is(err, ErrNoFragments) {
			t.Fatalf("err %v, want ErrNoFragments", err)
		}
	})
	t.Run("no such stream", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
			w.WriteHeader(404)
			io.WriteString(w, `{"message":"The requested stream is not found or not active."}`)
		}))
		defer srv.Close()
		f := &fakeService{srv: srv}
		_, _, err := run(t, f.config())
		if !errors.Is(err, kvs.ErrStreamNotFound) {
			t.Fatalf("err %v, want ErrStreamNotFound", err)
		}
	})
	t.Run("endpoint gone", func(t *testing.T) {
		f := newFakeService(t, 2)
		f.srv.Close()
		cfg := f.config()
		cfg.ReconnectTimeout = 500 * time.Millisecond
		_, evs, err := run(t, cfg)
		if !errors.Is(err, ErrGaveUp) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err %v, want ErrGaveUp with the refused connection", err)
		}
		_ = evs
	})
	t.Run("settings", func(t *testing.T) {
		f := newFakeService(t, 1)
		for _, mod := range []func(*Config){
			func(c *Config) { c.StreamName = "bad name" },
			func(c *Config) { c.Start = kvs.StartSelector{Type: "LATEST"} },
			func(c *Config) { c.Start = kvs.StartSelector{Type: "FRAGMENT_NUMBER", AfterFragmentNumber: "12a"} },
			func(c *Config) { c.Start = kvs.StartSelector{Type: "CONTINUATION_TOKEN"} },
			func(c *Config) { c.Archive = &Range{Start: time.Unix(200, 0), End: time.Unix(100, 0)} },
		} {
			cfg := f.config()
			mod(&cfg)
			if _, err := New(cfg); !errors.Is(err, ErrSettings) {
				t.Errorf("New: %v, want ErrSettings", err)
			}
		}
	})
}
