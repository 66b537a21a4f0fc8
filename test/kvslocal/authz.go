package kvslocal

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Authorizer is the endpoint's IAM (test/kvslocal/iam implements it).
// Credential supplies the credentials it knows, such as its IAM users'
// long-term keys and the temporary credentials it issued (Config.Credentials
// are asked first); Authorize decides whether the caller, whose signature
// verified, may perform the action on the resource. A non-nil error denies
// the call with AccessDeniedException and the error's text as the message
// (AWS's "User: … is not authorized to perform: … on resource: …").
type Authorizer interface {
	Credential(accessKeyID string) (Credential, bool)
	Authorize(AuthzRequest) error
}

// AuthzRequest is one call to authorize.
type AuthzRequest struct {
	AccessKeyID string
	Action      string // e.g. kinesisvideo:PutMedia
	// Resource is the stream's ARN as the service resolves it (also when
	// the call names the stream), arn:aws:kinesisvideo:<region>:<account>:stream/<name>/*
	// for a stream that does not exist, or * for ListStreams.
	Resource string
}

const msgExpiredToken = "The security token included in the request is expired"

// operationName is the operation a request path names, as IAM actions and
// CloudTrail spell it: /describeStream is DescribeStream.
func operationName(path string) string {
	p := strings.TrimPrefix(path, "/")
	if p == "" {
		return ""
	}
	return strings.ToUpper(p[:1]) + p[1:]
}

// authorize asks Config.Authorizer about a verified request; nil without one.
func (s *Server) authorize(r *http.Request, body []byte, id identity) *apiError {
	az := s.cfg.Authorizer
	if az == nil {
		return nil
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	if p == "" || strings.Contains(p, "/") {
		return nil // not an operation: the handler answers
	}
	action := "kinesisvideo:" + operationName(r.URL.Path)
	var ref streamRef
	if p == "putMedia" {
		ref = streamRef{StreamName: r.Header.Get("x-amzn-stream-name"), StreamARN: r.Header.Get("x-amzn-stream-arn")}
	} else {
		var in struct {
			StreamName  string
			StreamARN   string
			ResourceARN string
		}
		json.Unmarshal(body, &in) // a malformed body is the handler's to report
		ref = streamRef{StreamName: in.StreamName, StreamARN: in.StreamARN}
		if ref.StreamARN == "" {
			ref.StreamARN = in.ResourceARN
		}
	}
	resource := "*"
	switch {
	case ref.StreamARN != "":
		resource = ref.StreamARN
	case ref.StreamName != "":
		resource = "arn:aws:kinesisvideo:" + s.cfg.Region + ":" + s.cfg.AccountID + ":stream/" + ref.StreamName + "/*"
		if m, e := s.store.get(streamRef{StreamName: ref.StreamName}); e == nil {
			resource = m.ARN
		}
	}
	if err := az.Authorize(AuthzRequest{AccessKeyID: id.AccessKeyID, Action: action, Resource: resource}); err != nil {
		return newErr("AccessDeniedException", err.Error())
	}
	if p == "getMedia" || p == "getMediaForFragmentList" {
		// Reading a stream under a customer-managed key takes kms:Decrypt
		// on it as well (kmsuse.go).
		if m, e := s.store.get(ref); e == nil && m.KMSKeyID != "" {
			if arn, managed := s.kms.keyARN(m.KMSKeyID); arn != "" && !managed {
				if err := az.Authorize(AuthzRequest{AccessKeyID: id.AccessKeyID, Action: "kms:Decrypt", Resource: arn}); err != nil {
					return newErr("AccessDeniedException", err.Error())
				}
			}
		}
	}
	return nil
}
