package kvs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel conditions, matched with errors.Is on *APIError and *AckError.
var (
	// ErrStreamNotFound: the service answered ResourceNotFoundException.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrAccessDenied covers the authentication and authorization family:
	// NotAuthorized, AccessDenied, UnrecognizedClient, InvalidSignature,
	// IncompleteSignature, MissingAuthenticationToken, ExpiredToken, and a
	// 401/403 answer without a code.
	ErrAccessDenied = errors.New("access denied")
	// ErrStreamDeleting: EnsureStream found the stream in DELETING state.
	ErrStreamDeleting = errors.New("stream is being deleted")
	// ErrAborted is the cause of a PutMedia session ended by Abort. It wraps
	// context.Canceled: cancellation is not a failure.
	ErrAborted = fmt.Errorf("PutMedia aborted: %w", context.Canceled)
	// ErrResponseEnded is returned by PutMedia.Write once the service has
	// ended the response (cleanly) while the body was still open.
	ErrResponseEnded = errors.New("PutMedia: the service ended the response")
)

// accessDeniedCodes are the service and front-end codes of the auth family.
var accessDeniedCodes = map[string]bool{
	"NotAuthorizedException":              true,
	"AccessDeniedException":               true,
	"AccessDenied":                        true,
	"UnrecognizedClientException":         true,
	"InvalidSignatureException":           true,
	"IncompleteSignatureException":        true,
	"MissingAuthenticationTokenException": true,
	"MissingAuthenticationToken":          true,
	"ExpiredTokenException":               true,
	"ExpiredToken":                        true,
	"SignatureDoesNotMatch":               true,
	"InvalidClientTokenId":                true,
}

// APIError is an error answer from the service (any HTTP status but 200).
// Message never holds credentials, signatures or security tokens: they are
// scrubbed, because AWS echoes the canonical request (token included) in
// InvalidSignatureException messages.
type APIError struct {
	Op         string // e.g. DescribeStream, PutMedia
	StatusCode int    // HTTP status
	Code       string // e.g. ResourceNotFoundException; "" when the answer had none
	Message    string // the service's message, or an excerpt of a non-JSON body
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	if e.Code == "" {
		return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.StatusCode, msg)
	}
	return fmt.Sprintf("%s: %s (HTTP %d): %s", e.Op, e.Code, e.StatusCode, msg)
}

// Unwrap maps the service code to a sentinel: ErrStreamNotFound or
// ErrAccessDenied, or nil.
func (e *APIError) Unwrap() error {
	switch {
	case e.Code == "ResourceNotFoundException":
		return ErrStreamNotFound
	case accessDeniedCodes[e.Code]:
		return ErrAccessDenied
	case e.Code == "" && (e.StatusCode == 401 || e.StatusCode == 403):
		return ErrAccessDenied
	}
	return nil
}

// Retryable reports whether the same call may succeed later without a change
// of configuration: throttling, connection limits, server errors, timeouts.
func (e *APIError) Retryable() bool {
	switch e.Code {
	case "ClientLimitExceededException", "ConnectionLimitExceededException", "ThrottlingException",
		"LimitExceededException", "ServiceUnavailableException", "InternalFailure":
		return true
	}
	if e.Unwrap() != nil {
		return false
	}
	return e.StatusCode >= 500 || e.StatusCode == 408 || e.StatusCode == 429
}

// AckError is an ERROR acknowledgement.
type AckError struct{ Ack Ack }

func (e *AckError) Error() string {
	info := LookupAckError(e.Ack.ErrorID)
	code := ""
	if e.Ack.ErrorCode != "" && e.Ack.ErrorCode != info.Name {
		code = " (" + scrub(excerptText([]byte(e.Ack.ErrorCode), 64)) + ")"
	}
	return fmt.Sprintf("PutMedia: the service rejected fragment %s (timecode %d): ErrorId %d %s%s",
		e.Ack.FragmentNumber, e.Ack.FragmentTimecode, e.Ack.ErrorID, info.Name, code)
}

// Retriable reports whether resending the fragment may succeed.
func (e *AckError) Retriable() bool { return LookupAckError(e.Ack.ErrorID).Retriable }

// secretPatterns match things that must never reach error text: SigV4
// signatures, security tokens (in headers, canonical requests or query
// strings) and secret keys.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)(x-amz-security-token\s*[:=]\s*)[^\s'",&;\\]+`),
	regexp.MustCompile(`(?i)(x-amz-signature\s*[:=]\s*)[^\s'",&;\\]+`),
	regexp.MustCompile(`(?i)(signature\s*=\s*)[0-9a-f]{16,}`),
	regexp.MustCompile(`(?i)((?:aws_)?secret_?access_?key"?\s*[:=]\s*"?)[^\s'",&;\\]+`),
	regexp.MustCompile(`(?i)((?:aws_)?session_?token"?\s*[:=]\s*"?)[^\s'",&;\\]+`),
}

// scrub removes signatures, tokens and secrets from s.
func scrub(s string) string {
	for _, re := range secretPatterns {
		s = re.ReplaceAllString(s, "${1}<redacted>")
	}
	return s
}

// maxMessage bounds a service message kept in an APIError.
const maxMessage = 512

// maxExcerpt bounds the excerpt of a non-JSON error body.
const maxExcerpt = 200

var htmlTag = regexp.MustCompile(`(?s)<(script|style)[^>]*>.*?</(script|style)>|<!--.*?-->|<[^>]*>`)

// bodyExcerpt makes a short, readable, single-line text out of an error body
// that is not JSON: tags of an HTML page removed, control characters and
// invalid UTF-8 dropped, whitespace collapsed, at most maxExcerpt bytes.
func bodyExcerpt(b []byte) string {
	s := string(b)
	if t := strings.TrimSpace(s); strings.HasPrefix(t, "<") {
		s = htmlTag.ReplaceAllString(s, " ")
		s = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&", "&quot;", `"`, "&#39;", "'", "&nbsp;", " ").Replace(s)
	}
	return scrub(excerptText([]byte(s), maxExcerpt))
}

// excerptText keeps printable runes, collapses whitespace and cuts at max
// bytes on a rune boundary, marking the cut with "…".
func excerptText(b []byte, max int) string {
	var sb strings.Builder
	space := false
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		switch {
		case r == utf8.RuneError && n <= 1:
			continue
		case unicode.IsSpace(r):
			space = sb.Len() > 0
			continue
		case !unicode.IsPrint(r):
			continue
		}
		need := utf8.RuneLen(r)
		if space {
			need++
		}
		if sb.Len()+need > max {
			return sb.String() + "…"
		}
		if space {
			sb.WriteByte(' ')
			space = false
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// cleanMessage prepares a service message for an APIError.
func cleanMessage(s string) string { return scrub(excerptText([]byte(s), maxMessage)) }

// Kinds of transport failure, from classifyTransport.
const (
	transportOther   = iota
	transportConnect // the dial failed: refused, unreachable, DNS, dial timeout
	transportTLS     // the TLS handshake failed: certificate, alert, not TLS
	transportConn    // an established connection failed: reset, EOF, read timeout
)

// classifyTransport finds what went wrong under the SDK's and net/http's
// layers of prefixes, and the error worth showing.
func classifyTransport(err error) (int, error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		inner := oe.Err
		var se *os.SyscallError
		if errors.As(inner, &se) {
			inner = se.Err
		}
		return transportConnect, inner
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return transportConnect, dnsErr
	}
	var (
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		hne x509.HostnameError
		cie x509.CertificateInvalidError
		rhe tls.RecordHeaderError
		ae  tls.AlertError
	)
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) ||
		errors.As(err, &rhe) || errors.As(err, &ae) {
		return transportTLS, err
	}
	if errors.As(err, &oe) {
		return transportConn, oe
	}
	return transportOther, err
}

// transportError describes a failure to reach endpoint (no HTTP answer). The
// result wraps the underlying error (errors.Is works with
// syscall.ECONNREFUSED, context.DeadlineExceeded ...), e.g.
// "DescribeStream: connect to http://127.0.0.1:1: connection refused".
func transportError(op, endpoint string, err error) error {
	kind, inner := classifyTransport(err)
	switch kind {
	case transportConnect:
		return fmt.Errorf("%s: connect to %s: %w", op, endpoint, inner)
	case transportTLS:
		return fmt.Errorf("%s: TLS with %s: %w", op, endpoint, inner)
	case transportConn:
		return fmt.Errorf("%s: connection to %s: %w", op, endpoint, inner)
	}
	return fmt.Errorf("%s: %s: %w", op, endpoint, inner)
}

// timeoutError is the error for a wait bounded by one of our timeouts.
func timeoutError(op, endpoint, what string, d time.Duration) error {
	return fmt.Errorf("%s: %s from %s within %v: %w", op, what, endpoint, d, context.DeadlineExceeded)
}

// IsTLSError reports whether err is a failed TLS handshake (an untrusted or
// invalid certificate, a TLS alert, a server that does not speak TLS):
// retrying the same connection cannot succeed.
func IsTLSError(err error) bool {
	kind, _ := classifyTransport(err)
	return kind == transportTLS
}
