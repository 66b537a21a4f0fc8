package kvslocal

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"
)

var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// streamRef is the StreamName | StreamARN pair most calls take.
type streamRef struct {
	StreamName string `json:"StreamName"`
	StreamARN  string `json:"StreamARN"`
}

// control dispatches the restJson1 control-plane operations.
func (s *Server) control(w http.ResponseWriter, r *http.Request, body []byte) {
	var err *apiError
	var out any
	switch r.URL.Path {
	case "/createStream":
		out, err = s.createStream(body)
	case "/describeStream":
		out, err = s.describeStream(body)
	case "/deleteStream":
		out, err = s.deleteStream(body)
	case "/listStreams":
		out, err = s.listStreams(body)
	case "/getDataEndpoint":
		out, err = s.getDataEndpoint(body)
	case "/tagStream":
		out, err = s.tagStream(body)
	case "/untagStream":
		out, err = s.untagStream(body)
	case "/listTagsForStream":
		out, err = s.listTagsForStream(body)
	default:
		err = &apiError{404, "UnknownOperationException", ""}
	}
	if err != nil {
		writeError(w, err.status, err.code, err.msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &apiError{400, "SerializationException", "the request body is not valid JSON for this operation: " + err.Error()}
	}
	return nil
}

func validName(name string) *apiError {
	if name == "" || len(name) > 256 || !streamNameRE.MatchString(name) {
		return newErr("InvalidArgumentException", fmt.Sprintf("1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 256", name))
	}
	return nil
}

func randVersion() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (s *Server) createStream(body []byte) (any, *apiError) {
	var in struct {
		DeviceName           string
		StreamName           string
		MediaType            string
		KmsKeyId             string
		DataRetentionInHours *int
		Tags                 map[string]string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := validName(in.StreamName); e != nil {
		return nil, e
	}
	retention := 0
	if in.DataRetentionInHours != nil {
		retention = *in.DataRetentionInHours
	}
	if retention < 0 || retention > 87600 {
		return nil, newErr("InvalidArgumentException", "DataRetentionInHours must be between 0 and 87600")
	}
	if len(in.Tags) > 50 {
		return nil, newErr("TagsPerResourceExceededLimitException", "a stream can have at most 50 tags")
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.streams[in.StreamName]; ok {
		return nil, newErr("ResourceInUseException", fmt.Sprintf("The stream %s already exists.", in.StreamName))
	}
	now := s.cfg.Now()
	kms := in.KmsKeyId
	if kms == "" {
		kms = fmt.Sprintf("arn:aws:kms:%s:%s:alias/aws/kinesisvideo", s.cfg.Region, s.cfg.AccountID)
	}
	m := &streamMeta{
		Name: in.StreamName, DeviceName: in.DeviceName, MediaType: in.MediaType, KMSKeyID: kms,
		ARN:     fmt.Sprintf("arn:aws:kinesisvideo:%s:%s:stream/%s/%d", s.cfg.Region, s.cfg.AccountID, in.StreamName, now.UnixMilli()),
		Version: randVersion(), Status: "ACTIVE", Created: now, RetentionHours: retention, Tags: in.Tags,
		Dir: fmt.Sprintf("%s-%d", in.StreamName, now.UnixNano()),
	}
	st.streams[m.Name] = m
	if err := st.saveStreams(); err != nil {
		delete(st.streams, m.Name)
		return nil, &apiError{500, "InternalFailure", "could not store the stream"}
	}
	s.log.Info("stream created", "stream", m.Name, "retention_hours", retention)
	return map[string]string{"StreamARN": m.ARN}, nil
}

// lookup resolves a StreamName or StreamARN. Called with st.mu held.
func (s *Server) lookup(ref streamRef) (*streamMeta, *apiError) {
	if ref.StreamName == "" && ref.StreamARN == "" {
		return nil, newErr("InvalidArgumentException", "either StreamName or StreamARN is required")
	}
	if ref.StreamName != "" && ref.StreamARN != "" {
		return nil, newErr("InvalidArgumentException", "specify either StreamName or StreamARN, not both")
	}
	for _, m := range s.store.streams {
		if (ref.StreamName != "" && m.Name == ref.StreamName) || (ref.StreamARN != "" && m.ARN == ref.StreamARN) {
			return m, nil
		}
	}
	if ref.StreamName != "" {
		if e := validName(ref.StreamName); e != nil {
			return nil, e
		}
	}
	return nil, newErr("ResourceNotFoundException", "The requested stream is not found or not active.")
}

func streamInfo(m *streamMeta) map[string]any {
	return map[string]any{
		"DeviceName": m.DeviceName, "StreamName": m.Name, "StreamARN": m.ARN, "MediaType": m.MediaType,
		"KmsKeyId": m.KMSKeyID, "Version": m.Version, "Status": m.Status,
		"CreationTime": float64(m.Created.UnixMilli()) / 1000, "DataRetentionInHours": m.RetentionHours,
	}
}

func (s *Server) describeStream(body []byte) (any, *apiError) {
	var ref streamRef
	if e := decode(body, &ref); e != nil {
		return nil, e
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	m, e := s.lookup(ref)
	if e != nil {
		return nil, e
	}
	return map[string]any{"StreamInfo": streamInfo(m)}, nil
}

func (s *Server) deleteStream(body []byte) (any, *apiError) {
	var in struct {
		StreamARN      string
		CurrentVersion string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.StreamARN == "" {
		return nil, newErr("InvalidArgumentException", "StreamARN is required")
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	m, e := s.lookup(streamRef{StreamARN: in.StreamARN})
	if e != nil {
		return nil, e
	}
	if in.CurrentVersion != "" && in.CurrentVersion != m.Version {
		return nil, newErr("VersionMismatchException", "The stream version does not match the current version.")
	}
	delete(s.store.streams, m.Name)
	delete(s.store.frags, m.Name)
	s.store.saveStreams()
	return map[string]any{}, nil
}

func (s *Server) listStreams(body []byte) (any, *apiError) {
	var in struct {
		MaxResults          int
		NextToken           string
		StreamNameCondition *struct{ ComparisonOperator, ComparisonValue string }
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.MaxResults == 0 {
		in.MaxResults = 10000
	}
	if in.MaxResults < 1 || in.MaxResults > 10000 {
		return nil, newErr("InvalidArgumentException", "MaxResults must be between 1 and 10000")
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	var names []string
	for n := range s.store.streams {
		if c := in.StreamNameCondition; c != nil && c.ComparisonValue != "" && !strings.HasPrefix(n, c.ComparisonValue) {
			continue
		}
		if in.NextToken != "" && n <= in.NextToken {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]any{}
	if len(names) > in.MaxResults {
		names = names[:in.MaxResults]
		out["NextToken"] = names[len(names)-1]
	}
	list := []any{}
	for _, n := range names {
		list = append(list, streamInfo(s.store.streams[n]))
	}
	out["StreamInfoList"] = list
	return out, nil
}

var apiNames = map[string]bool{"PUT_MEDIA": true, "GET_MEDIA": true, "LIST_FRAGMENTS": true, "GET_MEDIA_FOR_FRAGMENT_LIST": true,
	"GET_HLS_STREAMING_SESSION_URL": true, "GET_DASH_STREAMING_SESSION_URL": true, "GET_CLIP": true, "GET_IMAGES": true}

func (s *Server) getDataEndpoint(body []byte) (any, *apiError) {
	var in struct {
		streamRef
		APIName string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if !apiNames[in.APIName] {
		return nil, newErr("InvalidArgumentException", fmt.Sprintf("1 validation error detected: Value '%s' at 'aPIName' failed to satisfy constraint: Member must satisfy enum value set", in.APIName))
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	if _, e := s.lookup(in.streamRef); e != nil {
		return nil, e
	}
	// The endpoint's own URL, with its port: never built from Host.
	return map[string]string{"DataEndpoint": s.URL()}, nil
}

func (s *Server) tagStream(body []byte) (any, *apiError) {
	var in struct {
		streamRef
		Tags map[string]string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	m, e := s.lookup(in.streamRef)
	if e != nil {
		return nil, e
	}
	if m.Tags == nil {
		m.Tags = map[string]string{}
	}
	for k, v := range in.Tags {
		if len(k) == 0 || len(k) > 128 || len(v) > 256 {
			return nil, newErr("InvalidArgumentException", fmt.Sprintf("tag %q: keys are 1 to 128 characters, values at most 256", k))
		}
		m.Tags[k] = v
	}
	if len(m.Tags) > 50 {
		return nil, newErr("TagsPerResourceExceededLimitException", "a stream can have at most 50 tags")
	}
	s.store.saveStreams()
	return map[string]any{}, nil
}

func (s *Server) untagStream(body []byte) (any, *apiError) {
	var in struct {
		streamRef
		TagKeyList []string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	m, e := s.lookup(in.streamRef)
	if e != nil {
		return nil, e
	}
	for _, k := range in.TagKeyList {
		delete(m.Tags, k)
	}
	s.store.saveStreams()
	return map[string]any{}, nil
}

func (s *Server) listTagsForStream(body []byte) (any, *apiError) {
	var ref streamRef
	if e := decode(body, &ref); e != nil {
		return nil, e
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	m, e := s.lookup(ref)
	if e != nil {
		return nil, e
	}
	tags := m.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return map[string]any{"Tags": tags}, nil
}

// streamFor returns a copy of a stream's metadata.
func (s *Server) streamFor(ref streamRef) (streamMeta, *apiError) {
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	m, e := s.lookup(ref)
	if e != nil {
		return streamMeta{}, e
	}
	return *m, nil
}

var _ = time.Now
