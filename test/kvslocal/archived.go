package kvslocal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Archived media: ListFragments and GetMediaForFragmentList
// (kinesis-video-archived-media), over the same stored fragments.

// epochSeconds renders a time as a JSON epoch-seconds number with millis.
func epochSeconds(t time.Time) json.Number {
	return json.Number(secMillis(t))
}

const (
	defaultListFragments = 100
	maxListFragments     = 1000
)

func (s *Server) listFragments(w http.ResponseWriter, body []byte) {
	var in struct {
		streamRef
		MaxResults       *int64
		NextToken        string
		FragmentSelector *struct {
			FragmentSelectorType string
			TimestampRange       *struct{ StartTimestamp, EndTimestamp *json.Number }
		}
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
	limit := int64(defaultListFragments)
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxListFragments {
			writeError(w, newErr("InvalidArgumentException", fmt.Sprintf("MaxResults must be between 1 and %d.", maxListFragments)))
			return
		}
		limit = *in.MaxResults
	}
	var from, to time.Time
	useServer, ranged := false, false
	if fs := in.FragmentSelector; fs != nil {
		switch fs.FragmentSelectorType {
		case "SERVER_TIMESTAMP":
			useServer = true
		case "PRODUCER_TIMESTAMP":
		default:
			writeError(w, newErr("InvalidArgumentException", fmt.Sprintf("FragmentSelectorType %q is not PRODUCER_TIMESTAMP or SERVER_TIMESTAMP.", fs.FragmentSelectorType)))
			return
		}
		if fs.TimestampRange == nil {
			writeError(w, newErr("InvalidArgumentException", "FragmentSelector needs a TimestampRange."))
			return
		}
		if from, e = timestampOf(fs.TimestampRange.StartTimestamp, "StartTimestamp"); e == nil {
			to, e = timestampOf(fs.TimestampRange.EndTimestamp, "EndTimestamp")
		}
		if e != nil {
			writeError(w, e)
			return
		}
		ranged = true
	}
	frags, _ := s.store.fragments(m.Name)
	list := []map[string]any{}
	next := ""
	for _, f := range frags {
		if in.NextToken != "" && cmpNumbers(f.Number, in.NextToken) <= 0 {
			continue
		}
		ts := f.ProducerTimestamp
		if useServer {
			ts = f.ServerTimestamp
		}
		if ranged && (ts.Before(from) || ts.After(to)) {
			continue
		}
		if int64(len(list)) == limit {
			next = list[len(list)-1]["FragmentNumber"].(string)
			break
		}
		list = append(list, map[string]any{
			"FragmentNumber":               f.Number,
			"FragmentSizeInBytes":          f.Size,
			"ProducerTimestamp":            epochSeconds(f.ProducerTimestamp),
			"ServerTimestamp":              epochSeconds(f.ServerTimestamp),
			"FragmentLengthInMilliseconds": f.DurationMillis,
		})
	}
	out := map[string]any{"Fragments": list}
	if next != "" {
		out["NextToken"] = next
	}
	writeJSON(w, out)
}

const maxFragmentList = 1000

func (s *Server) getMediaForFragmentList(w http.ResponseWriter, body []byte) {
	var in struct {
		streamRef
		Fragments []string
	}
	if e := decode(body, &in); e != nil {
		writeError(w, e)
		return
	}
	m, e := s.store.get(in.streamRef)
	if e != nil {
		writeError(w, e)
		return
	}
	if len(in.Fragments) < 1 || len(in.Fragments) > maxFragmentList {
		writeError(w, newErr("InvalidArgumentException", fmt.Sprintf("Fragments must list 1 to %d fragment numbers.", maxFragmentList)))
		return
	}
	frags, _ := s.store.fragments(m.Name)
	byNumber := make(map[string]fragment, len(frags))
	for _, f := range frags {
		byNumber[f.Number] = f
	}
	want := make([]fragment, 0, len(in.Fragments))
	for _, n := range in.Fragments {
		f, ok := byNumber[n]
		if !ok {
			writeError(w, newErr("ResourceNotFoundException", fmt.Sprintf("Fragment %s was not found on the stream.", n)))
			return
		}
		want = append(want, f)
	}
	w.Header().Set("Content-Type", "video/webm")
	w.WriteHeader(http.StatusOK)
	for _, f := range want {
		if err := s.writeChunk(w, m.Name, f, chunkFragmentList); err != nil {
			s.log.Info("GetMediaForFragmentList ended", "stream", m.Name, "error", err)
			return
		}
	}
}
