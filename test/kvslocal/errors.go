package kvslocal

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
)

// Status codes of the service's modelled exceptions.
var errorStatus = map[string]int{
	"ResourceNotFoundException":             404,
	"ResourceInUseException":                400,
	"InvalidArgumentException":              400,
	"ClientLimitExceededException":          400,
	"AccountStreamLimitExceededException":   400,
	"VersionMismatchException":              400,
	"TagsPerResourceExceededLimitException": 400,
	"InvalidResourceFormatException":        400,
	"ConnectionLimitExceededException":      400,
	"NotAuthorizedException":                401,
	"AccessDeniedException":                 401,
}

// writeError writes an error the way restJson1 clients parse it: the code
// in x-amzn-ErrorType (with the service namespace after a colon, as AWS
// sends it) and {"Message": ...} in the body.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	if status == 0 {
		status = errorStatus[code]
	}
	if status == 0 {
		status = 400
	}
	w.Header().Set("x-amzn-ErrorType", code+":http://internal.amazon.com/coral/com.amazonaws.kinesisvideo.v20170930/")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"Message": msg})
}

// apiError is an error answer in flight.
type apiError struct {
	status int
	code   string
	msg    string
}

func newErr(code, msg string) *apiError {
	return &apiError{status: errorStatus[code], code: code, msg: msg}
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
