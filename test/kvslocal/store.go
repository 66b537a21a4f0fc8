package kvslocal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The storage layout under Config.Dir:
//
//	streams.json               stream metadata, rewritten atomically on change
//	fragment-counter           the highest fragment counter reserved so far
//	streams/<name>-<ns>/       one directory per stream incarnation
//	    index.jsonl            one fragment record per line, appended and fsynced
//	    <number>.frag          a fragment: segment head + producer Tags + Cluster
//	captures/<name>/<n>.mkv    PutMedia bodies, verbatim (Config.CaptureBodies)
//
// A fragment is written to <number>.frag.tmp, fsynced, renamed, the directory
// fsynced, and only then appended to the index (fsynced too): a crash at any
// point leaves either the whole fragment or none of it, and PERSISTED is sent
// only after all of that.

// streamMeta is a stream's control-plane state.
type streamMeta struct {
	Name           string            `json:"name"`
	ARN            string            `json:"arn"`
	DeviceName     string            `json:"deviceName,omitempty"`
	MediaType      string            `json:"mediaType,omitempty"`
	KMSKeyID       string            `json:"kmsKeyId,omitempty"`
	Version        string            `json:"version"`
	Status         string            `json:"status"`
	Created        time.Time         `json:"created"`
	RetentionHours int               `json:"retentionHours"`
	Tags           map[string]string `json:"tags,omitempty"`
	Dir            string            `json:"dir"`
}

// FragmentInfo describes a stored fragment.
type FragmentInfo struct {
	Number            string    `json:"number"`            // 47 decimal digits, increasing
	ProducerTimestamp time.Time `json:"producerTimestamp"` // Cluster timecode (+ producer start if RELATIVE)
	ServerTimestamp   time.Time `json:"serverTimestamp"`   // endpoint clock when the Cluster arrived
	Timecode          uint64    `json:"timecode"`          // the Cluster's timecode as received
	TimecodeScale     uint64    `json:"timecodeScale"`     // nanoseconds per timecode unit
	DurationMillis    int64     `json:"durationMillis"`    // first to last frame
	Frames            int       `json:"frames"`
	Size              int64     `json:"size"` // bytes stored: segment head + producer Tags + Cluster
}

// fragment is a stored fragment's index record.
type fragment struct {
	FragmentInfo
	File       string `json:"file"`
	HeaderSize int64  `json:"headerSize"` // EBML header … Tracks, as received
	TagsSize   int64  `json:"tagsSize"`   // the producer's Tags before the Cluster
	// DataKey is the wrapped key the file is sealed with (seal.go); nil
	// for fragments stored before encryption at rest.
	DataKey *wrappedKey `json:"dataKey,omitempty"`
}

// errStreamGone reports a stream deleted while a fragment was written.
var errStreamGone = errors.New("the stream was deleted")

// store keeps streams and their fragments on disk.
type store struct {
	dir string

	mu       sync.Mutex
	streams  map[string]*streamMeta
	frags    map[string][]fragment // by stream name, in order
	next     uint64                // last fragment counter handed out
	reserved uint64                // highest counter persisted in fragment-counter
	changed  chan struct{}         // closed and replaced when a fragment is stored
	now      func() time.Time      // the server's clock, for retention (retention.go)
}

// Fragment numbers are this prefix and a 34-digit counter: 47 digits, like
// the service's (which start 9134385233318…).
const (
	fragmentPrefix = "9134385233318"
	counterBlock   = 1024 // counters reserved per write of fragment-counter
)

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "streams"), 0o755); err != nil {
		return nil, fmt.Errorf("kvslocal: creating the storage: %w", err)
	}
	st := &store{dir: dir, streams: map[string]*streamMeta{}, frags: map[string][]fragment{}, changed: make(chan struct{})}
	path := filepath.Join(dir, "streams.json")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var list []*streamMeta
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("kvslocal: %s: %w", path, err)
		}
		for _, m := range list {
			st.streams[m.Name] = m
			if err := st.loadIndex(m); err != nil {
				return nil, err
			}
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("kvslocal: %w", err)
	}
	b, err = os.ReadFile(filepath.Join(dir, "fragment-counter"))
	if err == nil {
		n, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return nil, fmt.Errorf("kvslocal: %s: %w", filepath.Join(dir, "fragment-counter"), perr)
		}
		st.next = max(st.next, n)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("kvslocal: %w", err)
	}
	st.reserved = st.next
	return st, nil
}

// loadIndex reads a stream's index. A torn last line (a crash while
// appending: that fragment was never acknowledged) is cut off; fragment
// files that never made it into the index, and temporary files, are removed.
func (st *store) loadIndex(m *streamMeta) error {
	sdir := st.streamDir(m)
	path := filepath.Join(sdir, "index.jsonl")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kvslocal: %w", err)
	}
	known := map[string]bool{}
	good := 0
	for good < len(b) {
		nl := bytes.IndexByte(b[good:], '\n')
		if nl < 0 {
			break
		}
		var f fragment
		if json.Unmarshal(b[good:good+nl], &f) != nil || f.File == "" {
			break
		}
		good += nl + 1
		if _, err := os.Stat(filepath.Join(sdir, f.File)); err != nil {
			continue
		}
		st.frags[m.Name] = append(st.frags[m.Name], f)
		known[f.File] = true
		if n, err := strconv.ParseUint(strings.TrimPrefix(f.Number, fragmentPrefix), 10, 64); err == nil && n > st.next {
			st.next = n
		}
	}
	if good < len(b) {
		if err := os.Truncate(path, int64(good)); err != nil {
			return fmt.Errorf("kvslocal: cutting the torn end of %s: %w", path, err)
		}
	}
	entries, _ := os.ReadDir(sdir)
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".frag") && !known[name] {
			os.Remove(filepath.Join(sdir, name))
		}
	}
	return nil
}

func (st *store) streamDir(m *streamMeta) string { return filepath.Join(st.dir, "streams", m.Dir) }

// saveStreams rewrites streams.json atomically. Called with st.mu held.
func (st *store) saveStreams() error {
	list := make([]*streamMeta, 0, len(st.streams))
	for _, m := range st.streams {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	b, err := json.MarshalIndent(list, "", " ")
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(st.dir, "streams.json"), b)
}

// writeFileSync writes path atomically and durably.
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lookup resolves a StreamName or StreamARN. Called with st.mu held.
func (st *store) lookup(ref streamRef) (*streamMeta, *apiError) {
	switch {
	case ref.StreamName == "" && ref.StreamARN == "":
		return nil, newErr("InvalidArgumentException", "Either StreamName or StreamARN must be specified.")
	case ref.StreamName != "" && ref.StreamARN != "":
		return nil, newErr("InvalidArgumentException", "Specify either StreamName or StreamARN, not both.")
	case ref.StreamName != "":
		if e := validName(ref.StreamName); e != nil {
			return nil, e
		}
		if m := st.streams[ref.StreamName]; m != nil {
			return m, nil
		}
	default:
		for _, m := range st.streams {
			if m.ARN == ref.StreamARN {
				return m, nil
			}
		}
	}
	return nil, newErr("ResourceNotFoundException", "The requested stream is not found or not active.")
}

// get returns a copy of a stream's metadata.
func (st *store) get(ref streamRef) (streamMeta, *apiError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	m, e := st.lookup(ref)
	if e != nil {
		return streamMeta{}, e
	}
	c := *m
	c.Tags = make(map[string]string, len(m.Tags))
	for k, v := range m.Tags {
		c.Tags[k] = v
	}
	return c, nil
}

// update applies fn to a stream and saves the result; fn's error leaves the
// stream unchanged.
func (st *store) update(ref streamRef, fn func(m *streamMeta) *apiError) *apiError {
	st.mu.Lock()
	defer st.mu.Unlock()
	m, e := st.lookup(ref)
	if e != nil {
		return e
	}
	old := *m
	old.Tags = map[string]string{}
	for k, v := range m.Tags {
		old.Tags[k] = v
	}
	if e := fn(m); e != nil {
		*m = old
		return e
	}
	if err := st.saveStreams(); err != nil {
		*m = old
		return newErr("InternalFailure", "could not store the stream: "+err.Error())
	}
	return nil
}

// nextNumber hands out the next fragment number. Numbers increase across
// restarts: counters are reserved in blocks, persisted before use.
func (st *store) nextNumber() (string, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.next+1 > st.reserved {
		r := st.next + counterBlock
		if err := writeFileSync(filepath.Join(st.dir, "fragment-counter"), []byte(strconv.FormatUint(r, 10)+"\n")); err != nil {
			return "", fmt.Errorf("reserving fragment numbers: %w", err)
		}
		st.reserved = r
	}
	st.next++
	return fmt.Sprintf("%s%034d", fragmentPrefix, st.next), nil
}

// fragmentFile is a fragment being written.
type fragmentFile struct {
	*os.File
	stream, dir, tmp, final string
	sealer                  *sealer // seal.go; set by seal before the first write
}

// createFragment opens the temporary file of a new fragment.
func (st *store) createFragment(stream, number string) (*fragmentFile, error) {
	st.mu.Lock()
	m := st.streams[stream]
	var dir string
	if m != nil {
		dir = st.streamDir(m)
	}
	st.mu.Unlock()
	if m == nil {
		return nil, errStreamGone
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ff := &fragmentFile{stream: stream, dir: dir, final: number + ".frag"}
	ff.tmp = ff.final + ".tmp"
	f, err := os.OpenFile(filepath.Join(dir, ff.tmp), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	ff.File = f
	return ff, nil
}

// abort drops a fragment that will not be stored.
func (ff *fragmentFile) abort() {
	ff.Close()
	os.Remove(filepath.Join(ff.dir, ff.tmp))
}

// commit makes a written fragment durable and visible: fsync, rename, fsync
// the directory, append the index record and fsync it.
func (st *store) commit(ff *fragmentFile, f fragment) error {
	err := ff.sealRest() // seal.go: the last records, before the fsync
	if err == nil {
		err = ff.Sync()
	}
	if cerr := ff.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(filepath.Join(ff.dir, ff.tmp), filepath.Join(ff.dir, ff.final))
	}
	if err == nil {
		err = syncDir(ff.dir)
	}
	if err != nil {
		os.Remove(filepath.Join(ff.dir, ff.tmp))
		return err
	}
	f.File = ff.final
	line, err := json.Marshal(f)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if m := st.streams[ff.stream]; m == nil || st.streamDir(m) != ff.dir {
		return errStreamGone
	}
	idx, err := os.OpenFile(filepath.Join(ff.dir, "index.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = idx.Write(append(line, '\n'))
	if err == nil {
		err = idx.Sync()
	}
	if cerr := idx.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	st.frags[ff.stream] = append(st.frags[ff.stream], f)
	close(st.changed)
	st.changed = make(chan struct{})
	return nil
}

// fragments returns a copy of a stream's fragment list and a channel closed
// when any fragment is stored next.
func (st *store) fragments(stream string) ([]fragment, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expireLocked(stream) // retention.go
	return append([]fragment(nil), st.frags[stream]...), st.changed
}

// open opens a stored fragment for reading.
func (st *store) open(stream string, f fragment) (*os.File, error) {
	st.mu.Lock()
	m := st.streams[stream]
	st.mu.Unlock()
	if m == nil {
		return nil, errStreamGone
	}
	return os.Open(filepath.Join(st.streamDir(m), f.File))
}

// remove deletes a stream, its fragments and their files. Called with st.mu
// held.
func (st *store) remove(m *streamMeta) error {
	delete(st.streams, m.Name)
	delete(st.frags, m.Name)
	if err := st.saveStreams(); err != nil {
		return err
	}
	return os.RemoveAll(st.streamDir(m))
}

// Fragments returns the fragments stored for a stream, in order.
func (s *Server) Fragments(stream string) ([]FragmentInfo, error) {
	if _, e := s.store.get(streamRef{StreamName: stream}); e != nil {
		return nil, fmt.Errorf("kvslocal: stream %q: %s", stream, e.msg)
	}
	frags, _ := s.store.fragments(stream)
	out := make([]FragmentInfo, len(frags))
	for i, f := range frags {
		out[i] = f.FragmentInfo
	}
	return out, nil
}

// Captures returns the paths of the PutMedia bodies captured for a stream
// (Config.CaptureBodies), in the order they arrived.
func (s *Server) Captures(stream string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(s.cfg.Dir, "captures", stream, "*.mkv"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

// captureFile creates the next capture file of a stream.
func (s *Server) captureFile(stream string) (*os.File, error) {
	if stream == "." || stream == ".." {
		return nil, fmt.Errorf("stream %q cannot name a capture directory", stream)
	}
	dir := filepath.Join(s.cfg.Dir, "captures", stream)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.mkv"))
	n := 0
	for _, p := range paths {
		if v, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(p), ".mkv")); err == nil && v > n {
			n = v
		}
	}
	return os.OpenFile(filepath.Join(dir, fmt.Sprintf("%06d.mkv", n+1)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
}
