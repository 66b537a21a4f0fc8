package kvslocal

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// Namespaces AWS appends to x-amzn-ErrorType after a colon. Clients strip
// them; they are here so the header looks as it does on the wire.
const (
	kvsNamespace   = "http://internal.amazon.com/coral/com.amazonaws.kinesisvideo.v20170930/"
	coralNamespace = "http://internal.amazon.com/coral/com.amazon.coral.service/"
)

// errorStatus maps the service's modelled exceptions to their HTTP status
// (botocore and aws-sdk-go-v2 models; see local-aws.md §2.3).
var errorStatus = map[string]int{
	"ResourceNotFoundException":             http.StatusNotFound,
	"ResourceInUseException":                http.StatusBadRequest,
	"InvalidArgumentException":              http.StatusBadRequest,
	"ClientLimitExceededException":          http.StatusBadRequest,
	"AccountStreamLimitExceededException":   http.StatusBadRequest,
	"VersionMismatchException":              http.StatusBadRequest,
	"TagsPerResourceExceededLimitException": http.StatusBadRequest,
	"InvalidResourceFormatException":        http.StatusBadRequest,
	"ConnectionLimitExceededException":      http.StatusBadRequest,
	"InvalidEndpointException":              http.StatusBadRequest,
	"NoDataRetentionException":              http.StatusBadRequest,
	"SerializationException":                http.StatusBadRequest,
	"NotAuthorizedException":                http.StatusUnauthorized,
	"AccessDeniedException":                 http.StatusUnauthorized,
	"UnknownOperationException":             http.StatusNotFound,
	"RequestEntityTooLargeException":        http.StatusRequestEntityTooLarge,
	"InternalFailure":                       http.StatusInternalServerError,
}

// apiError is an error answer: a modelled exception of the service, or an
// authentication failure of the front end (coral).
type apiError struct {
	status int
	code   string
	msg    string
	coral  bool // a front-end error: body {"message":…}, coral namespace
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// newErr returns a modelled exception with its modelled status.
func newErr(code, msg string) *apiError {
	st := errorStatus[code]
	if st == 0 {
		st = http.StatusBadRequest
	}
	return &apiError{status: st, code: code, msg: msg}
}

// authErr returns a front-end authentication error (always 403).
func authErr(code, msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: code, msg: msg, coral: true}
}

// Messages of the front end's authentication errors, verbatim.
const (
	msgUnrecognizedClient = "The security token included in the request is invalid."
	msgMissingAuth        = "Missing Authentication Token"
	msgBadSignature       = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// writeError writes e the way restJson1 clients parse it: the code in
// x-amzn-ErrorType (with the namespace after a colon, as AWS sends it) and
// the message in the body.
func writeError(w http.ResponseWriter, e *apiError) {
	ns, key := kvsNamespace, "Message"
	if e.coral {
		ns, key = coralNamespace, "message"
	}
	w.Header().Set("x-amzn-ErrorType", e.code+":"+ns)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(map[string]string{key: e.msg})
}

// newRequestID returns a random UUID for x-amzn-RequestId.
func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
