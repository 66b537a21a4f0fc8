package kvs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAPIErrorSentinels(t *testing.T) {
	tests := []struct {
		e                    APIError
		notFound, denied     bool
		retryable            bool
		wantInMessageOrError string
	}{
		{e: APIError{Op: "DescribeStream", StatusCode: 404, Code: "ResourceNotFoundException", Message: "gone"}, notFound: true},
		{e: APIError{StatusCode: 401, Code: "NotAuthorizedException"}, denied: true},
		{e: APIError{StatusCode: 401, Code: "AccessDeniedException"}, denied: true},
		{e: APIError{StatusCode: 403, Code: "UnrecognizedClientException"}, denied: true},
		{e: APIError{StatusCode: 403, Code: "InvalidSignatureException"}, denied: true},
		{e: APIError{StatusCode: 403, Code: "IncompleteSignatureException"}, denied: true},
		{e: APIError{StatusCode: 403, Code: "MissingAuthenticationTokenException"}, denied: true},
		{e: APIError{StatusCode: 403, Code: "ExpiredTokenException"}, denied: true},
		{e: APIError{StatusCode: 403}, denied: true},
		{e: APIError{StatusCode: 401}, denied: true},
		{e: APIError{StatusCode: 400, Code: "ClientLimitExceededException"}, retryable: true},
		{e: APIError{StatusCode: 400, Code: "ConnectionLimitExceededException"}, retryable: true},
		{e: APIError{StatusCode: 400, Code: "InvalidArgumentException"}},
		{e: APIError{StatusCode: 400, Code: "ResourceInUseException"}},
		{e: APIError{StatusCode: 500}, retryable: true},
		{e: APIError{StatusCode: 502, Message: "Bad Gateway"}, retryable: true},
		{e: APIError{StatusCode: 503, Code: "ServiceUnavailableException"}, retryable: true},
		{e: APIError{StatusCode: 429}, retryable: true},
		{e: APIError{StatusCode: 404}},
	}
	for _, tc := range tests {
		e := &tc.e
		var err error = e
		wrapped := errors.Join(errors.New("context"), err)
		if got := errors.Is(wrapped, ErrStreamNotFound); got != tc.notFound {
			t.Errorf("%v: Is(ErrStreamNotFound) = %v", e, got)
		}
		if got := errors.Is(wrapped, ErrAccessDenied); got != tc.denied {
			t.Errorf("%v: Is(ErrAccessDenied) = %v", e, got)
		}
		if got := e.Retryable(); got != tc.retryable {
			t.Errorf("%v: Retryable() = %v", e, got)
		}
		var ae *APIError
		if !errors.As(wrapped, &ae) || ae != e {
			t.Errorf("%v: errors.As failed", e)
		}
	}
	if s := (&APIError{Op: "DescribeStream", StatusCode: 404, Code: "ResourceNotFoundException", Message: "gone"}).Error(); s != "DescribeStream: ResourceNotFoundException (HTTP 404): gone" {
		t.Errorf("Error() = %q", s)
	}
	if s := (&APIError{Op: "PutMedia", StatusCode: 502}).Error(); s != "PutMedia: HTTP 502: (no message)" {
		t.Errorf("Error() = %q", s)
	}
}

func TestScrub(t *testing.T) {
	// The shape of a real InvalidSignatureException message: the service
	// echoes the canonical request, security token included.
	msg := "The request signature we calculated does not match the signature you provided.\n\n" +
		"The Canonical String for this request should have been\n'POST\n/describeStream\n\ncontent-type:application/json\n" +
		"host:kinesisvideo.us-west-2.amazonaws.com\nx-amz-date:20261123T002235Z\nx-amz-security-token:" + testToken + "\n'" +
		" Authorization: AWS4-HMAC-SHA256 Credential=AKID/20261123/us-west-2/kinesisvideo/aws4_request, SignedHeaders=host, Signature=0123456789abcdef0123456789abcdef" +
		" X-Amz-Security-Token=" + testToken + "&X-Amz-Signature=deadbeefdeadbeef aws_secret_access_key=" + testSecret +
		` {"SessionToken":"` + testToken + `"}`
	got := scrub(msg)
	for _, secret := range []string{testToken, testSecret, "0123456789abcdef0123456789abcdef", "deadbeefdeadbeef"} {
		if strings.Contains(got, secret) {
			t.Errorf("scrub left %q in %q", secret, got)
		}
	}
	if !strings.Contains(got, "x-amz-security-token:<redacted>") {
		t.Errorf("scrub lost the structure: %q", got)
	}
	// Clock-skew messages survive.
	skew := "Signature expired: 20231107T044734Z is now earlier than 20231107T045305Z (20231107T045805Z - 5 min.)"
	if scrub(skew) != skew {
		t.Errorf("scrub changed %q to %q", skew, scrub(skew))
	}
}

func TestBodyExcerpt(t *testing.T) {
	html := `<html>
<head><title>502 Bad Gateway</title><style>body { color: red }</style></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
<!-- a padding comment to prevent IE from showing its own page ......................................... -->
</body>
</html>`
	if got, want := bodyExcerpt([]byte(html)), "502 Bad Gateway 502 Bad Gateway nginx"; got != want {
		t.Errorf("html: got %q, want %q", got, want)
	}
	long := strings.Repeat("é", 300) // 600 bytes
	got := bodyExcerpt([]byte(long))
	if !utf8.ValidString(got) || len(got) > maxExcerpt+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("long: %d bytes, valid=%v: %q", len(got), utf8.ValidString(got), got)
	}
	if got := bodyExcerpt([]byte("a\x00b\x1b[31m\xff\xfe  c\r\n\td")); got != "ab[31m c d" {
		t.Errorf("control characters: got %q", got)
	}
	if got := bodyExcerpt(nil); got != "" {
		t.Errorf("empty: %q", got)
	}
}

func TestAbortedIsCancellation(t *testing.T) {
	if !errors.Is(ErrAborted, context.Canceled) {
		t.Fatal("ErrAborted must wrap context.Canceled")
	}
}

func TestAckErrorText(t *testing.T) {
	e := &AckError{Ack: Ack{EventType: AckErrorEvent, FragmentTimecode: 1565810137603, FragmentNumber: "91343852333181432392682062607743920146264264921", ErrorID: 4002, ErrorCode: "MAX_FRAGMENT_DURATION_REACHED"}}
	s := e.Error()
	for _, want := range []string{"4002", "FRAGMENT_DURATION_REACHED", "MAX_FRAGMENT_DURATION_REACHED", "1565810137603", "9134385"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q lacks %q", s, want)
		}
	}
	if e.Retriable() {
		t.Error("4002 must not be retriable")
	}
}
