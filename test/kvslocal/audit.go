package kvslocal

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// The audit log (Config.AuditLog): one CloudTrail-shaped event per API
// call, appended as a JSON line when the call ends, authentication failures
// included. Events carry who called (the access key ID, never the secret,
// the session token or the signature), what was asked (requestParameters:
// the JSON body, or PutMedia's headers, with anything secret-looking
// removed), the answer when small (responseElements) and the error code and
// message of a failure.

// auditEvent is one line of the audit log, with CloudTrail's field names.
type auditEvent struct {
	EventVersion       string          `json:"eventVersion"`
	UserIdentity       auditIdentity   `json:"userIdentity"`
	EventTime          string          `json:"eventTime"`
	EventSource        string          `json:"eventSource"`
	EventName          string          `json:"eventName"`
	AWSRegion          string          `json:"awsRegion"`
	SourceIPAddress    string          `json:"sourceIPAddress"`
	UserAgent          string          `json:"userAgent"`
	ErrorCode          string          `json:"errorCode,omitempty"`
	ErrorMessage       string          `json:"errorMessage,omitempty"`
	RequestParameters  map[string]any  `json:"requestParameters"`
	ResponseElements   map[string]any  `json:"responseElements"`
	Resources          []auditResource `json:"resources,omitempty"`
	RequestID          string          `json:"requestID"`
	EventID            string          `json:"eventID"`
	ReadOnly           bool            `json:"readOnly"`
	EventType          string          `json:"eventType"`
	ManagementEvent    bool            `json:"managementEvent"`
	RecipientAccountID string          `json:"recipientAccountId"`
	EventCategory      string          `json:"eventCategory"`
}

type auditIdentity struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId,omitempty"`
	ARN         string `json:"arn,omitempty"`
	AccountID   string `json:"accountId,omitempty"`
	AccessKeyID string `json:"accessKeyId,omitempty"`
	UserName    string `json:"userName,omitempty"`
	InvokedBy   string `json:"invokedBy,omitempty"`
}

// auditResource is a resource an event names (CloudTrail's resources).
type auditResource struct {
	ARN       string `json:"ARN"`
	AccountID string `json:"accountId"`
	Type      string `json:"type"`
}

const (
	auditEventVersion = "1.09"
	auditEventSource  = "kinesisvideo.amazonaws.com"
	// auditMaxResponse bounds the responses logged as responseElements
	// and the error bodies kept for errorMessage.
	auditMaxResponse = 4 << 10
	// auditUserName is the default IAM user name of Config.Credentials.
	auditUserName = "kvslocal"
)

// dataOps are the data-plane operations (CloudTrail "Data" events, not
// management events).
var dataOps = map[string]bool{"PutMedia": true, "GetMedia": true, "ListFragments": true, "GetMediaForFragmentList": true}

// auditLog appends events to a file.
type auditLog struct {
	mu sync.Mutex
	f  *os.File
}

func openAuditLog(path string) (*auditLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kvslocal: audit log: %w", err)
	}
	return &auditLog{f: f}, nil
}

func (a *auditLog) write(ev *auditEvent) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	_, err = a.f.Write(append(b, '\n'))
	return err
}

func (a *auditLog) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// auditWriter records what the audit event needs from the response. It
// unwraps for http.ResponseController (flushes, full duplex).
type auditWriter struct {
	http.ResponseWriter
	r      *http.Request
	start  time.Time
	status int
	body   bytes.Buffer // the first auditMaxResponse bytes
	req    []byte       // the request body, for requestParameters
	// Set by the service that answers a call of another service than
	// kinesisvideo (NoteAuditCall).
	source, name string
	params       map[string]any
}

// NoteAuditCall tells the audit log which call of which service w answers
// (source: iam.amazonaws.com…, name: CreateRole…) and its parameters
// (secret-looking members are removed). Empty values leave what is known.
// It does nothing when the audit log is off.
func NoteAuditCall(w http.ResponseWriter, source, name string, params map[string]any) {
	for {
		if aw, ok := w.(*auditWriter); ok {
			if source != "" {
				aw.source = source
			}
			if name != "" {
				aw.name = name
			}
			if params != nil {
				aw.params = params
			}
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

func (aw *auditWriter) WriteHeader(code int) {
	if aw.status == 0 {
		aw.status = code
	}
	aw.ResponseWriter.WriteHeader(code)
}

func (aw *auditWriter) Write(p []byte) (int, error) {
	if aw.status == 0 {
		aw.status = http.StatusOK
	}
	if aw.r.URL.Path != "/putMedia" && aw.r.URL.Path != "/getMedia" && aw.r.URL.Path != "/getMediaForFragmentList" {
		if room := auditMaxResponse - aw.body.Len(); room > 0 {
			aw.body.Write(p[:min(len(p), room)])
		}
	}
	return aw.ResponseWriter.Write(p)
}

func (aw *auditWriter) Unwrap() http.ResponseWriter { return aw.ResponseWriter }

// auditStart wraps w when the audit log is on.
func (s *Server) auditStart(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if s.audit == nil {
		return w
	}
	return &auditWriter{ResponseWriter: w, r: r, start: s.cfg.Now()}
}

// auditBody notes the request body of a call that reads it whole.
func auditBody(w http.ResponseWriter, body []byte) {
	if aw, ok := w.(*auditWriter); ok {
		aw.req = body
	}
}

// auditEnd writes the event of a finished call.
func (s *Server) auditEnd(w http.ResponseWriter) {
	aw, ok := w.(*auditWriter)
	if !ok {
		return
	}
	r := aw.r
	name := operationName(r.URL.Path) // authz.go
	source := auditEventSource
	if aw.source != "" {
		source, name = aw.source, aw.name
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	ev := &auditEvent{
		EventVersion: auditEventVersion, EventTime: aw.start.UTC().Format(time.RFC3339), EventSource: source,
		EventName: name, AWSRegion: s.cfg.Region, SourceIPAddress: ip, UserAgent: r.UserAgent(),
		RequestID: aw.Header().Get("x-amzn-RequestId"), EventID: newRequestID(), EventType: "AwsApiCall",
		ReadOnly:           strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Get"),
		RecipientAccountID: s.cfg.AccountID, EventCategory: "Management", ManagementEvent: true,
	}
	if dataOps[name] && source == auditEventSource {
		ev.EventCategory, ev.ManagementEvent = "Data", false
	}
	ev.UserIdentity = s.auditIdentity(r)
	if aw.params != nil {
		ev.RequestParameters = scrub(aw.params)
	} else if source != auditEventSource {
		// another service's body is not JSON (awsquery) or is noted
	} else if r.URL.Path == "/putMedia" {
		ev.RequestParameters = map[string]any{}
		for _, h := range []struct{ header, key string }{
			{"x-amzn-stream-name", "streamName"}, {"x-amzn-stream-arn", "streamARN"},
			{"x-amzn-fragment-timecode-type", "fragmentTimecodeType"}, {"x-amzn-producer-start-timestamp", "producerStartTimestamp"},
			{"x-amzn-fragment-acknowledgment-required", "fragmentAcknowledgmentRequired"},
		} {
			if v := r.Header.Get(h.header); v != "" {
				ev.RequestParameters[h.key] = v
			}
		}
	} else if len(aw.req) > 0 {
		var m map[string]any
		if json.Unmarshal(aw.req, &m) == nil {
			ev.RequestParameters = scrub(m)
		}
	}
	if aw.status >= 400 {
		ev.ErrorCode, _, _ = strings.Cut(aw.Header().Get("x-amzn-ErrorType"), ":")
		var msg map[string]any
		if json.Unmarshal(aw.body.Bytes(), &msg) == nil {
			for _, k := range []string{"Message", "message"} {
				if m, ok := msg[k].(string); ok && ev.ErrorMessage == "" {
					ev.ErrorMessage = m
				}
			}
			if t, ok := msg["__type"].(string); ok && ev.ErrorCode == "" {
				ev.ErrorCode = t[strings.LastIndex(t, "#")+1:]
			}
		} else {
			var x struct {
				Error struct{ Code, Message string }
			}
			if xml.Unmarshal(aw.body.Bytes(), &x) == nil {
				ev.ErrorCode, ev.ErrorMessage = x.Error.Code, x.Error.Message
			}
		}
		if ev.ErrorCode == "" {
			ev.ErrorCode = http.StatusText(aw.status)
		}
	} else if aw.body.Len() > 0 && aw.body.Len() < auditMaxResponse {
		var m map[string]any
		if json.Unmarshal(aw.body.Bytes(), &m) == nil && len(m) > 0 {
			ev.ResponseElements = scrub(m)
		}
	}
	if err := s.audit.write(ev); err != nil {
		s.log.Error("writing the audit log", "error", err)
	}
}

// auditIdentity is the caller as far as the request tells: the access key
// ID from the Authorization header's scope (never anything else of it).
func (s *Server) auditIdentity(r *http.Request) auditIdentity {
	_, rest, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	key, _, _ := strings.Cut(rest, "/")
	if key == "" || strings.ContainsAny(key, ", ") || len(key) > 128 {
		return auditIdentity{Type: "Unknown", AccountID: s.cfg.AccountID}
	}
	return s.identityOf(key)
}

// identityOf is the holder of an access key as CloudTrail names it.
func (s *Server) identityOf(key string) auditIdentity {
	id := auditIdentity{Type: "Unknown", AccountID: s.cfg.AccountID, AccessKeyID: key}
	c, ok := s.credential(key) // sigv4.go
	if !ok {
		return id
	}
	id.Type, id.UserName, id.PrincipalID = "IAMUser", s.userName(), key
	id.ARN = fmt.Sprintf("arn:aws:iam::%s:user/%s", s.cfg.AccountID, s.userName())
	switch {
	case strings.Contains(c.ARN, ":assumed-role/"):
		// arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
		id.Type, id.UserName, id.ARN = "AssumedRole", "", c.ARN
		if parts := strings.Split(c.ARN, "/"); len(parts) == 3 {
			id.PrincipalID = key + ":" + parts[2]
		}
	case strings.Contains(c.ARN, ":user/"):
		id.UserName, id.ARN = c.ARN[strings.LastIndex(c.ARN, "/")+1:], c.ARN
	}
	return id
}

// scrub removes, at any depth (in objects and arrays), members whose names
// look secret.
func scrub(m map[string]any) map[string]any {
	for k, v := range m {
		l := strings.ToLower(k)
		if strings.Contains(l, "secret") || strings.Contains(l, "sessiontoken") || strings.Contains(l, "securitytoken") ||
			strings.Contains(l, "password") || strings.Contains(l, "signature") || strings.Contains(l, "authorization") ||
			strings.Contains(l, "privatekey") {
			m[k] = "HIDDEN_DUE_TO_SECURITY_REASONS"
			continue
		}
		m[k] = scrubValue(v)
	}
	return m
}

// scrubValue scrubs the objects in a JSON value.
func scrubValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return scrub(v)
	case []any:
		for i := range v {
			v[i] = scrubValue(v[i])
		}
	}
	return v
}

// AuditRecord is an event reported by a part of the endpoint that is not
// served at its URL: the IoT credentials provider (test/kvslocal/iam).
type AuditRecord struct {
	Source, Name          string // eventSource and eventName
	SourceIP, UserAgent   string
	ErrorCode, ErrorMsg   string // empty on success
	Params, Response      map[string]any
	PrincipalType         string // e.g. AWSService
	PrincipalARN          string
	InvokedBy             string // e.g. credentials.iot.amazonaws.com
	ResourceARN, Resource string // a resource the event names, and its type
}

// Audit appends r to the audit log (Config.AuditLog), if it is on.
func (s *Server) Audit(r AuditRecord) {
	if s.audit == nil {
		return
	}
	ev := &auditEvent{
		EventVersion: auditEventVersion, EventTime: s.cfg.Now().UTC().Format(time.RFC3339), EventSource: r.Source, EventName: r.Name,
		AWSRegion: s.cfg.Region, SourceIPAddress: r.SourceIP, UserAgent: r.UserAgent, ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMsg,
		RequestID: newRequestID(), EventID: newRequestID(), EventType: "AwsApiCall", ManagementEvent: true,
		RecipientAccountID: s.cfg.AccountID, EventCategory: "Management",
		UserIdentity: auditIdentity{Type: r.PrincipalType, ARN: r.PrincipalARN, AccountID: s.cfg.AccountID, InvokedBy: r.InvokedBy},
	}
	if r.Params != nil {
		ev.RequestParameters = scrub(r.Params)
	}
	if r.Response != nil {
		ev.ResponseElements = scrub(r.Response)
	}
	if r.ResourceARN != "" {
		ev.Resources = []auditResource{{ARN: r.ResourceARN, AccountID: s.cfg.AccountID, Type: r.Resource}}
	}
	if err := s.audit.write(ev); err != nil {
		s.log.Error("writing the audit log", "error", err)
	}
}
