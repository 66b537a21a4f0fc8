package kvslocal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/kvsgo/kvsgo/pkg/mkv"
)

type startSelector struct {
	StartSelectorType   string
	AfterFragmentNumber string
	StartTimestamp      *json.Number
	ContinuationToken   string
}

func tsOf(n *json.Number) (time.Time, error) {
	if n == nil {
		return time.Time{}, fmt.Errorf("StartTimestamp is required")
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(int64(f * 1000)), nil
}

// getMedia streams fragments as the service does: each one its own segment
// (EBML header, Segment of unknown size, Info, Tracks), then the
// FRAGMENT_NUMBER, SERVER_TIMESTAMP and PRODUCER_TIMESTAMP tags, the
// producer's tags and the Cluster, then MILLIS_BEHIND_NOW and
// CONTINUATION_TOKEN. EARLIEST and NOW wait for new fragments until none has
// come for GetMediaIdleTimeout.
func (s *Server) getMedia(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		streamRef
		StartSelector *startSelector
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		writeError(w, 400, "InvalidArgumentException", "the request body is not valid JSON: "+err.Error())
		return
	}
	m, e := s.streamFor(in.streamRef)
	if e != nil {
		writeError(w, e.status, e.code, e.msg)
		return
	}
	if in.StartSelector == nil {
		writeError(w, 400, "InvalidArgumentException", "StartSelector is required")
		return
	}
	sel := in.StartSelector
	frags, changed := s.store.fragments(m.Name)
	var start int
	follow := false
	switch sel.StartSelectorType {
	case "EARLIEST":
		follow = true
	case "NOW":
		start, follow = len(frags), true
	case "FRAGMENT_NUMBER":
		start = sort.Search(len(frags), func(i int) bool { return cmpNum(frags[i].Number, sel.AfterFragmentNumber) >= 0 })
		if start == len(frags) || frags[start].Number != sel.AfterFragmentNumber {
			writeError(w, 404, "ResourceNotFoundException", "The requested fragment is not found.")
			return
		}
	case "CONTINUATION_TOKEN":
		start = sort.Search(len(frags), func(i int) bool { return cmpNum(frags[i].Number, sel.ContinuationToken) > 0 })
		follow = true
	case "PRODUCER_TIMESTAMP", "SERVER_TIMESTAMP":
		t, err := tsOf(sel.StartTimestamp)
		if err != nil {
			writeError(w, 400, "InvalidArgumentException", err.Error())
			return
		}
		for start < len(frags) {
			ts := frags[start].ServerTimestamp
			if sel.StartSelectorType == "PRODUCER_TIMESTAMP" {
				ts = frags[start].ProducerTimestamp
			}
			if !ts.Before(t) {
				break
			}
			start++
		}
		follow = true
	default:
		writeError(w, 400, "InvalidArgumentException", fmt.Sprintf("StartSelectorType %q is not one of EARLIEST, NOW, FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, CONTINUATION_TOKEN", sel.StartSelectorType))
		return
	}
	w.Header().Set("Content-Type", "video/webm")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	i := start
	for {
		for ; i < len(frags); i++ {
			if err := s.writeFragment(w, m.Name, frags[i]); err != nil {
				return
			}
			rc.Flush()
		}
		if !follow {
			return
		}
		select {
		case <-changed:
			frags, changed = s.store.fragments(m.Name)
		case <-time.After(s.cfg.GetMediaIdleTimeout):
			return
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
}

func (s *Server) writeFragment(w http.ResponseWriter, stream string, fi FragmentInfo) error {
	data, err := s.store.readFragment(stream, fi)
	if err != nil || int64(len(data)) < fi.HeaderSize {
		s.log.Error("reading fragment", "stream", stream, "fragment", fi.Number, "error", err)
		return fmt.Errorf("fragment %s unreadable", fi.Number)
	}
	out := make([]byte, 0, len(data)+512)
	out = append(out, data[:fi.HeaderSize]...)
	out = mkv.AppendTags(out, []mkv.SimpleTag{
		{Name: mkv.TagFragmentNumber, Value: fi.Number},
		{Name: mkv.TagServerTimestamp, Value: secMillis(fi.ServerTimestamp)},
		{Name: mkv.TagProducerTimestamp, Value: secMillis(fi.ProducerTimestamp)},
	})
	out = append(out, data[fi.HeaderSize:]...)
	behind := s.cfg.Now().Sub(fi.ServerTimestamp).Milliseconds()
	if behind < 0 {
		behind = 0
	}
	out = mkv.AppendTags(out, []mkv.SimpleTag{
		{Name: mkv.TagMillisBehindNow, Value: strconv.FormatInt(behind, 10)},
		{Name: mkv.TagContinuationToken, Value: fi.Number},
	})
	_, err = w.Write(out)
	return err
}

func secMillis(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// cmpNum compares two decimal fragment numbers.
func cmpNum(a, b string) int {
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

// listFragments answers ListFragments (archived media).
func (s *Server) listFragments(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		streamRef
		MaxResults       int
		NextToken        string
		FragmentSelector *struct {
			FragmentSelectorType string
			TimestampRange       struct{ StartTimestamp, EndTimestamp *json.Number }
		}
	}
	dec := json.NewDecoder(bytesReader(body))
	dec.UseNumber()
	if err := dec.Decode(&in); err != nil {
		writeError(w, 400, "InvalidArgumentException", "the request body is not valid JSON: "+err.Error())
		return
	}
	m, e := s.streamFor(in.streamRef)
	if e != nil {
		writeError(w, e.status, e.code, e.msg)
		return
	}
	if in.MaxResults <= 0 || in.MaxResults > 1000 {
		in.MaxResults = 1000
	}
	frags, _ := s.store.fragments(m.Name)
	var from, to time.Time
	useServer := false
	if fs := in.FragmentSelector; fs != nil {
		var err error
		if from, err = tsOf(fs.TimestampRange.StartTimestamp); err == nil {
			to, err = tsOf(fs.TimestampRange.EndTimestamp)
		}
		if err != nil {
			writeError(w, 400, "InvalidArgumentException", "TimestampRange: "+err.Error())
			return
		}
		useServer = fs.FragmentSelectorType == "SERVER_TIMESTAMP"
	}
	list := []any{}
	var next string
	for _, f := range frags {
		if in.NextToken != "" && cmpNum(f.Number, in.NextToken) <= 0 {
			continue
		}
		ts := f.ProducerTimestamp
		if useServer {
			ts = f.ServerTimestamp
		}
		if !from.IsZero() && (ts.Before(from) || ts.After(to)) {
			continue
		}
		if len(list) == in.MaxResults {
			next = f.Number
			break
		}
		list = append(list, map[string]any{
			"FragmentNumber": f.Number, "FragmentSizeInBytes": f.Size,
			"ProducerTimestamp":            float64(f.ProducerTimestamp.UnixMilli()) / 1000,
			"ServerTimestamp":              float64(f.ServerTimestamp.UnixMilli()) / 1000,
			"FragmentLengthInMilliseconds": f.DurationMillis,
		})
	}
	out := map[string]any{"Fragments": list}
	if next != "" {
		// The token names the last fragment returned.
		last := list[len(list)-1].(map[string]any)["FragmentNumber"]
		out["NextToken"] = last
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
