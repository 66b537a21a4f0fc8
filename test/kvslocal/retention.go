package kvslocal

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// Retention: a fragment is kept DataRetentionInHours after its server
// timestamp, by the endpoint's clock (Config.Now). Past that it is no
// longer served by GetMedia, ListFragments or GetMediaForFragmentList, and
// it is deleted from disk: lazily, whenever a stream's fragments are
// listed, and by a sweep every retentionSweep while serving. A stream with
// a retention of 0 keeps nothing: its fragments are acknowledged RECEIVED
// (never PERSISTED) and dropped (ingest.finish), as the service does not
// persist data for such a stream (kvssink.md §4.2).

// retentionSweep is how often the server deletes expired fragments of
// streams nobody reads.
const retentionSweep = time.Minute

// expired reports whether f is past m's retention at now.
func expired(m *streamMeta, f fragment, now time.Time) bool {
	return now.Sub(f.ServerTimestamp) >= time.Duration(m.RetentionHours)*time.Hour
}

// expireLocked drops a stream's expired fragments from the index and from
// disk. Called with st.mu held. Fragments are in arrival order, so the
// expired ones are a prefix.
func (st *store) expireLocked(name string) {
	m := st.streams[name]
	frags := st.frags[name]
	if m == nil || len(frags) == 0 || st.now == nil {
		return
	}
	now := st.now()
	n := 0
	for n < len(frags) && expired(m, frags[n], now) {
		n++
	}
	if n == 0 {
		return
	}
	rest := append([]fragment(nil), frags[n:]...)
	sdir := st.streamDir(m)
	var idx []byte
	for _, f := range rest {
		line, err := json.Marshal(f)
		if err != nil {
			return
		}
		idx = append(append(idx, line...), '\n')
	}
	// The index first: a crash after it leaves only unindexed files, which
	// loadIndex removes.
	if err := writeFileSync(filepath.Join(sdir, "index.jsonl"), idx); err != nil {
		return // try again on the next listing
	}
	st.frags[name] = rest
	for _, f := range frags[:n] {
		os.Remove(filepath.Join(sdir, f.File))
	}
}

// expireAll sweeps every stream.
func (st *store) expireAll() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for name := range st.streams {
		st.expireLocked(name)
	}
}

// sweep runs expireAll every retentionSweep until the server closes.
func (s *Server) sweep() {
	t := time.NewTicker(retentionSweep)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.store.expireAll()
		case <-s.closing:
			return
		}
	}
}
