package kvslocal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

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
	Number            string    `json:"number"`
	ProducerTimestamp time.Time `json:"producerTimestamp"`
	ServerTimestamp   time.Time `json:"serverTimestamp"`
	Timecode          uint64    `json:"timecode"`
	TimecodeScale     uint64    `json:"timecodeScale"`
	DurationMillis    int64     `json:"durationMillis"`
	Frames            int       `json:"frames"`
	Size              int64     `json:"size"`       // bytes of the stored fragment
	HeaderSize        int64     `json:"headerSize"` // of which the segment head
	File              string    `json:"file"`
}

// store keeps streams and their fragments on disk. A fragment is written to
// a temporary file, fsynced, renamed, the directory fsynced, and only then
// appended to the stream's index (also fsynced): a crash at any point leaves
// either the whole fragment or none of it.
type store struct {
	dir string

	mu      sync.Mutex
	streams map[string]*streamMeta
	frags   map[string][]FragmentInfo // by stream name, in order
	counter *big.Int
	changed chan struct{} // closed and replaced when a fragment is stored
}

// fragmentPrefix makes fragment numbers 47 digits long, like the service's.
const fragmentPrefix = "9134385233318"

func openStore(dir string) (*store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "streams"), 0o755); err != nil {
		return nil, fmt.Errorf("kvslocal: %w", err)
	}
	st := &store{dir: dir, streams: map[string]*streamMeta{}, frags: map[string][]FragmentInfo{}, counter: big.NewInt(0), changed: make(chan struct{})}
	b, err := os.ReadFile(filepath.Join(dir, "streams.json"))
	if err == nil {
		var list []*streamMeta
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("kvslocal: %s: %w", filepath.Join(dir, "streams.json"), err)
		}
		for _, m := range list {
			st.streams[m.Name] = m
			if err := st.loadIndex(m); err != nil {
				return nil, err
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("kvslocal: %w", err)
	}
	return st, nil
}

// loadIndex reads a stream's index, ignores a torn last line and removes
// fragment files that never made it into the index.
func (st *store) loadIndex(m *streamMeta) error {
	sdir := filepath.Join(st.dir, "streams", m.Dir)
	f, err := os.Open(filepath.Join(sdir, "index.jsonl"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kvslocal: %w", err)
	}
	defer f.Close()
	known := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var fi FragmentInfo
		if json.Unmarshal(sc.Bytes(), &fi) != nil {
			break // a torn write at the end: the fragment was never acknowledged
		}
		if _, err := os.Stat(filepath.Join(sdir, fi.File)); err != nil {
			continue
		}
		st.frags[m.Name] = append(st.frags[m.Name], fi)
		known[fi.File] = true
		n, _ := new(big.Int).SetString(strings.TrimPrefix(fi.Number, fragmentPrefix), 10)
		if n != nil && n.Cmp(st.counter) > 0 {
			st.counter = n
		}
	}
	entries, _ := os.ReadDir(sdir)
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, ".frag") && !known[name] || strings.HasSuffix(name, ".tmp") {
			os.Remove(filepath.Join(sdir, name))
		}
	}
	return nil
}

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

// nextNumber returns the next fragment number. Called with st.mu held.
func (st *store) nextNumber() string {
	st.counter.Add(st.counter, big.NewInt(1))
	return fmt.Sprintf("%s%034s", fragmentPrefix, st.counter.String())
}

// peekNumber returns the number the next fragment will get (for ERROR
// acks, which name the fragment that was rejected).
func (st *store) peekNumber() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := new(big.Int).Add(st.counter, big.NewInt(1))
	return fmt.Sprintf("%s%034s", fragmentPrefix, n.String())
}

// putFragment stores one fragment durably and returns its info.
func (st *store) putFragment(stream string, fi FragmentInfo, data []byte) (FragmentInfo, error) {
	st.mu.Lock()
	m := st.streams[stream]
	if m == nil {
		st.mu.Unlock()
		return fi, fmt.Errorf("stream %s was deleted", stream)
	}
	fi.Number = st.nextNumber()
	sdir := filepath.Join(st.dir, "streams", m.Dir)
	st.mu.Unlock()

	if err := os.MkdirAll(sdir, 0o755); err != nil {
		return fi, err
	}
	fi.File = fi.Number + ".frag"
	fi.Size = int64(len(data))
	if err := writeFileSync(filepath.Join(sdir, fi.File), data); err != nil {
		return fi, err
	}
	line, _ := json.Marshal(fi)
	st.mu.Lock()
	defer st.mu.Unlock()
	idx, err := os.OpenFile(filepath.Join(sdir, "index.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fi, err
	}
	_, err = idx.Write(append(line, '\n'))
	if err == nil {
		err = idx.Sync()
	}
	if cerr := idx.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fi, err
	}
	st.frags[stream] = append(st.frags[stream], fi)
	close(st.changed)
	st.changed = make(chan struct{})
	return fi, nil
}

// readFragment returns a stored fragment's bytes.
func (st *store) readFragment(stream string, fi FragmentInfo) ([]byte, error) {
	st.mu.Lock()
	m := st.streams[stream]
	st.mu.Unlock()
	if m == nil {
		return nil, fmt.Errorf("stream %s was deleted", stream)
	}
	return os.ReadFile(filepath.Join(st.dir, "streams", m.Dir, fi.File))
}

// fragments returns a copy of a stream's fragment list and a channel closed
// when a new fragment is stored.
func (st *store) fragments(stream string) ([]FragmentInfo, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]FragmentInfo(nil), st.frags[stream]...), st.changed
}

func (st *store) close() error { return nil }

// Fragments returns the fragments stored for a stream, in order.
func (s *Server) Fragments(stream string) ([]FragmentInfo, error) {
	s.store.mu.Lock()
	_, ok := s.store.streams[stream]
	s.store.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("kvslocal: no stream %q", stream)
	}
	f, _ := s.store.fragments(stream)
	return f, nil
}

// Captures returns the paths of the PutMedia bodies captured for a stream,
// in the order they arrived (Config.CaptureBodies).
func (s *Server) Captures(stream string) ([]string, error) {
	paths, err := filepath.Glob(filepath.Join(s.cfg.Dir, "captures", stream, "*.mkv"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}
