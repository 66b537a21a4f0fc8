package kvslocal

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
)

// The restJson1 control plane: every operation is POST /<operation> with a
// JSON body, dispatched by path (there is no X-Amz-Target).

var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// streamRef is the StreamName | StreamARN pair most calls take.
type streamRef struct {
	StreamName string `json:"StreamName"`
	StreamARN  string `json:"StreamARN"`
}

// controlOps are the control-plane operations by path.
var controlOps = map[string]func(*Server, []byte) (any, *apiError){
	"/createStream":        (*Server).createStream,
	"/describeStream":      (*Server).describeStream,
	"/deleteStream":        (*Server).deleteStream,
	"/listStreams":         (*Server).listStreams,
	"/getDataEndpoint":     (*Server).getDataEndpoint,
	"/tagStream":           (*Server).tagStream,
	"/untagStream":         (*Server).untagStream,
	"/listTagsForStream":   (*Server).listTagsForStream,
	"/updateStream":        (*Server).updateStream,
	"/updateDataRetention": (*Server).updateDataRetention,
	"/TagResource":         (*Server).tagResource, // resourcetags.go
	"/UntagResource":       (*Server).untagResource,
	"/ListTagsForResource": (*Server).listTagsForResource,
}

// writeJSON writes a 200 response with a JSON body.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	json.NewEncoder(w).Encode(v)
}

// decode parses a request body into v; an empty body is {}.
func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newErr("SerializationException", "The request body is not valid JSON for this operation: "+err.Error())
	}
	return nil
}

func validName(name string) *apiError {
	if len(name) < 1 || len(name) > 256 || !streamNameRE.MatchString(name) {
		return newErr("InvalidArgumentException", fmt.Sprintf("1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 256", name))
	}
	return nil
}

func validTags(tags map[string]string) *apiError {
	for k, v := range tags {
		if len(k) < 1 || len(k) > 128 || len(v) > 256 {
			return newErr("InvalidArgumentException", fmt.Sprintf("Tag %q: keys are 1 to 128 characters and values at most 256.", k))
		}
	}
	return nil
}

// newVersion returns a random 12-character stream version.
func newVersion() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 12)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

const maxTags = 50

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
	if retention < 0 {
		return nil, newErr("InvalidArgumentException", "DataRetentionInHours must be 0 or more.")
	}
	if len(in.DeviceName) > 128 || len(in.MediaType) > 128 {
		return nil, newErr("InvalidArgumentException", "DeviceName and MediaType are at most 128 characters.")
	}
	if len(in.Tags) > maxTags {
		return nil, newErr("TagsPerResourceExceededLimitException", "A stream can have at most 50 tags.")
	}
	if e := validTags(in.Tags); e != nil {
		return nil, e
	}
	now := s.cfg.Now()
	kms := in.KmsKeyId
	if kms == "" {
		kms = fmt.Sprintf("arn:aws:kms:%s:%s:alias/aws/kinesisvideo", s.cfg.Region, s.cfg.AccountID)
	}
	m := &streamMeta{
		Name: in.StreamName, DeviceName: in.DeviceName, MediaType: in.MediaType, KMSKeyID: kms,
		ARN:     fmt.Sprintf("arn:aws:kinesisvideo:%s:%s:stream/%s/%d", s.cfg.Region, s.cfg.AccountID, in.StreamName, now.UnixMilli()),
		Version: newVersion(), Status: "ACTIVE", Created: now, RetentionHours: retention, Tags: in.Tags,
		Dir: fmt.Sprintf("%s-%d", in.StreamName, now.UnixNano()),
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.streams[m.Name]; ok {
		return nil, newErr("ResourceInUseException", fmt.Sprintf("The stream %s already exists.", m.Name))
	}
	st.streams[m.Name] = m
	if err := st.saveStreams(); err != nil {
		delete(st.streams, m.Name)
		return nil, newErr("InternalFailure", "could not store the stream: "+err.Error())
	}
	s.log.Info("stream created", "stream", m.Name, "retention_hours", retention)
	return map[string]string{"StreamARN": m.ARN}, nil
}

// streamInfo is a stream as DescribeStream and ListStreams return it.
func streamInfo(m *streamMeta) map[string]any {
	info := map[string]any{
		"StreamName": m.Name, "StreamARN": m.ARN, "KmsKeyId": m.KMSKeyID, "Version": m.Version, "Status": m.Status,
		"CreationTime": float64(m.Created.UnixMilli()) / 1000, "DataRetentionInHours": m.RetentionHours,
	}
	if m.DeviceName != "" {
		info["DeviceName"] = m.DeviceName
	}
	if m.MediaType != "" {
		info["MediaType"] = m.MediaType
	}
	return info
}

func (s *Server) describeStream(body []byte) (any, *apiError) {
	var ref streamRef
	if e := decode(body, &ref); e != nil {
		return nil, e
	}
	m, e := s.store.get(ref)
	if e != nil {
		return nil, e
	}
	return map[string]any{"StreamInfo": streamInfo(&m)}, nil
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
		return nil, newErr("InvalidArgumentException", "1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	m, e := st.lookup(streamRef{StreamARN: in.StreamARN})
	if e != nil {
		return nil, e
	}
	if in.CurrentVersion != "" && in.CurrentVersion != m.Version {
		return nil, newErr("VersionMismatchException", "The stream version does not match the current version.")
	}
	if err := st.remove(m); err != nil {
		return nil, newErr("InternalFailure", "could not delete the stream: "+err.Error())
	}
	s.log.Info("stream deleted", "stream", m.Name)
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
		return nil, newErr("InvalidArgumentException", "MaxResults must be between 1 and 10000.")
	}
	if c := in.StreamNameCondition; c != nil && c.ComparisonOperator != "" && c.ComparisonOperator != "BEGINS_WITH" {
		return nil, newErr("InvalidArgumentException", "ComparisonOperator must be BEGINS_WITH.")
	}
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	var names []string
	for n := range st.streams {
		if c := in.StreamNameCondition; c != nil && !strings.HasPrefix(n, c.ComparisonValue) {
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
		list = append(list, streamInfo(st.streams[n]))
	}
	out["StreamInfoList"] = list
	return out, nil
}

var apiNames = map[string]bool{"PUT_MEDIA": true, "GET_MEDIA": true, "LIST_FRAGMENTS": true, "GET_MEDIA_FOR_FRAGMENT_LIST": true,
	"GET_HLS_STREAMING_SESSION_URL": true, "GET_DASH_STREAMING_SESSION_URL": true, "GET_CLIP": true, "GET_IMAGES": true}

// getDataEndpoint returns the endpoint's own base URL, with its port, for
// every API: one server serves the control and data planes. It is never
// built from Host, which producers send without the port.
func (s *Server) getDataEndpoint(body []byte) (any, *apiError) {
	var in struct {
		streamRef
		APIName string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if !apiNames[in.APIName] {
		return nil, newErr("InvalidArgumentException", fmt.Sprintf("1 validation error detected: Value '%s' at 'aPIName' failed to satisfy constraint: Member must satisfy enum value set: [PUT_MEDIA, GET_MEDIA, LIST_FRAGMENTS, GET_MEDIA_FOR_FRAGMENT_LIST, GET_HLS_STREAMING_SESSION_URL, GET_DASH_STREAMING_SESSION_URL, GET_CLIP, GET_IMAGES]", in.APIName))
	}
	if _, e := s.store.get(in.streamRef); e != nil {
		return nil, e
	}
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
	if e := validTags(in.Tags); e != nil {
		return nil, e
	}
	return map[string]any{}, s.addTags(in.streamRef, in.Tags)
}

// addTags adds or replaces tags of a stream (TagStream, TagResource).
func (s *Server) addTags(ref streamRef, tags map[string]string) *apiError {
	return s.store.update(ref, func(m *streamMeta) *apiError {
		if m.Tags == nil {
			m.Tags = map[string]string{}
		}
		for k, v := range tags {
			m.Tags[k] = v
		}
		if len(m.Tags) > maxTags {
			return newErr("TagsPerResourceExceededLimitException", "A stream can have at most 50 tags.")
		}
		return nil
	})
}

func (s *Server) untagStream(body []byte) (any, *apiError) {
	var in struct {
		streamRef
		TagKeyList []string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	return map[string]any{}, s.removeTags(in.streamRef, in.TagKeyList)
}

// removeTags removes tags of a stream by key (UntagStream, UntagResource).
func (s *Server) removeTags(ref streamRef, keys []string) *apiError {
	return s.store.update(ref, func(m *streamMeta) *apiError {
		for _, k := range keys {
			delete(m.Tags, k)
		}
		return nil
	})
}

func (s *Server) listTagsForStream(body []byte) (any, *apiError) {
	var ref streamRef
	if e := decode(body, &ref); e != nil {
		return nil, e
	}
	m, e := s.store.get(ref)
	if e != nil {
		return nil, e
	}
	return map[string]any{"Tags": m.Tags}, nil
}

// checkVersion enforces CurrentVersion, which updates require.
func checkVersion(m *streamMeta, v string) *apiError {
	if v == "" {
		return newErr("InvalidArgumentException", "1 validation error detected: Value null at 'currentVersion' failed to satisfy constraint: Member must not be null")
	}
	if v != m.Version {
		return newErr("VersionMismatchException", "The stream version does not match the current version.")
	}
	return nil
}

func (s *Server) updateStream(body []byte) (any, *apiError) {
	var in struct {
		streamRef
		CurrentVersion        string
		DeviceName, MediaType *string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	return map[string]any{}, s.store.update(in.streamRef, func(m *streamMeta) *apiError {
		if e := checkVersion(m, in.CurrentVersion); e != nil {
			return e
		}
		if in.DeviceName != nil {
			m.DeviceName = *in.DeviceName
		}
		if in.MediaType != nil {
			m.MediaType = *in.MediaType
		}
		m.Version = newVersion()
		return nil
	})
}

func (s *Server) updateDataRetention(body []byte) (any, *apiError) {
	var in struct {
		streamRef
		CurrentVersion             string
		Operation                  string
		DataRetentionChangeInHours int
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.DataRetentionChangeInHours < 1 {
		return nil, newErr("InvalidArgumentException", "DataRetentionChangeInHours must be at least 1.")
	}
	return map[string]any{}, s.store.update(in.streamRef, func(m *streamMeta) *apiError {
		if e := checkVersion(m, in.CurrentVersion); e != nil {
			return e
		}
		switch in.Operation {
		case "INCREASE_DATA_RETENTION":
			m.RetentionHours += in.DataRetentionChangeInHours
		case "DECREASE_DATA_RETENTION":
			if in.DataRetentionChangeInHours > m.RetentionHours {
				return newErr("InvalidArgumentException", "The retention period cannot go below 0.")
			}
			m.RetentionHours -= in.DataRetentionChangeInHours
		default:
			return newErr("InvalidArgumentException", fmt.Sprintf("Operation %q is not INCREASE_DATA_RETENTION or DECREASE_DATA_RETENTION.", in.Operation))
		}
		m.Version = newVersion()
		return nil
	})
}
