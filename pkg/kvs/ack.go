package kvs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// AckEventType is the EventType of a PutMedia acknowledgement.
type AckEventType string

// Acknowledgement types.
const (
	AckBuffering  AckEventType = "BUFFERING"
	AckReceived   AckEventType = "RECEIVED"
	AckPersisted  AckEventType = "PERSISTED"
	AckErrorEvent AckEventType = "ERROR"
	AckIdle       AckEventType = "IDLE"
)

// Ack is one acknowledgement from the PutMedia response stream.
type Ack struct {
	EventType        AckEventType
	FragmentTimecode uint64
	FragmentNumber   string
	ErrorID          int
	ErrorCode        string
}

// ErrMalformedAck is wrapped by every ack parsing error.
var ErrMalformedAck = errors.New("malformed PutMedia acknowledgement")

// ParseAck parses one acknowledgement object. Unknown keys are ignored; an
// unknown EventType, an ERROR without ErrorId, a duplicate key or a fragment
// number that is not 1 to 128 digits is an error naming the problem.
func ParseAck(b []byte) (Ack, error) {
	var a Ack
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return a, fmt.Errorf("%w: not a JSON object: %q", ErrMalformedAck, excerpt(b))
	}
	seen := map[string]bool{}
	hasID := false
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return a, fmt.Errorf("%w: %v", ErrMalformedAck, err)
		}
		key, _ := kt.(string)
		if seen[key] {
			return a, fmt.Errorf("%w: duplicate key %q", ErrMalformedAck, key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return a, fmt.Errorf("%w: value of %q: %v", ErrMalformedAck, key, err)
		}
		switch key {
		case "EventType":
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return a, fmt.Errorf("%w: EventType is not a string", ErrMalformedAck)
			}
			a.EventType = AckEventType(s)
		case "FragmentTimecode":
			v, err := strconv.ParseUint(string(raw), 10, 64)
			if err != nil {
				return a, fmt.Errorf("%w: FragmentTimecode %s is not an unsigned integer", ErrMalformedAck, excerpt(raw))
			}
			a.FragmentTimecode = v
		case "FragmentNumber":
			var s string
			if json.Unmarshal(raw, &s) != nil || !digits(s) {
				return a, fmt.Errorf("%w: FragmentNumber %s is not a string of 1 to 128 digits", ErrMalformedAck, excerpt(raw))
			}
			a.FragmentNumber = s
		case "ErrorId":
			v, err := strconv.ParseInt(string(raw), 10, 32)
			if err != nil {
				return a, fmt.Errorf("%w: ErrorId %s is not an integer", ErrMalformedAck, excerpt(raw))
			}
			a.ErrorID, hasID = int(v), true
		case "ErrorCode":
			var s string
			if json.Unmarshal(raw, &s) == nil {
				a.ErrorCode = s
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return a, fmt.Errorf("%w: %v", ErrMalformedAck, err)
	}
	switch a.EventType {
	case AckBuffering, AckReceived, AckPersisted, AckIdle:
	case AckErrorEvent:
		if !hasID {
			return a, fmt.Errorf("%w: ERROR without ErrorId", ErrMalformedAck)
		}
	case "":
		return a, fmt.Errorf("%w: no EventType", ErrMalformedAck)
	default:
		return a, fmt.Errorf("%w: unknown EventType %q", ErrMalformedAck, a.EventType)
	}
	return a, nil
}

func digits(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func excerpt(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// AckDecoder reads acknowledgements from a PutMedia response body: JSON
// objects separated by newlines or nothing at all, with bounded memory.
type AckDecoder struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewAckDecoder reads from r; an object longer than maxLen bytes is an error.
func NewAckDecoder(r io.Reader, maxLen int) *AckDecoder {
	if maxLen <= 0 {
		maxLen = 4096
	}
	return &AckDecoder{r: bufio.NewReaderSize(r, 4096), max: maxLen}
}

// Next returns the next acknowledgement, io.EOF at a clean end, or an error.
// Text outside objects (whitespace, newlines) is skipped; nested objects and
// strings are tracked so that a '}' inside them does not end the ack.
func (d *AckDecoder) Next() (Ack, error) {
	d.buf = d.buf[:0]
	depth, inStr, esc := 0, false, false
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			if err == io.EOF && len(d.buf) > 0 {
				return Ack{}, fmt.Errorf("%w: stream ended inside an object: %q", ErrMalformedAck, excerpt(d.buf))
			}
			return Ack{}, err
		}
		if depth == 0 {
			switch c {
			case '{':
			case ' ', '\t', '\r', '\n':
				continue
			default:
				return Ack{}, fmt.Errorf("%w: unexpected byte %q between acknowledgements", ErrMalformedAck, c)
			}
		}
		if len(d.buf) >= d.max {
			return Ack{}, fmt.Errorf("%w: object longer than %d bytes", ErrMalformedAck, d.max)
		}
		d.buf = append(d.buf, c)
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				return ParseAck(d.buf)
			}
		}
	}
}

// AckErrorInfo describes an ErrorId.
type AckErrorInfo struct {
	ID        int
	Name      string
	Retriable bool
}

var ackErrors = map[int]AckErrorInfo{
	4000: {4000, "STREAM_READ_ERROR", true},
	4001: {4001, "MAX_FRAGMENT_SIZE_REACHED", false},
	4002: {4002, "MAX_FRAGMENT_DURATION_REACHED", false},
	4003: {4003, "MAX_CONNECTION_DURATION_REACHED", true},
	4004: {4004, "FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS", false},
	4005: {4005, "MORE_THAN_ALLOWED_TRACKS_FOUND", false},
	4006: {4006, "INVALID_MKV_DATA", false},
	4007: {4007, "INVALID_PRODUCER_TIMESTAMP", false},
	4008: {4008, "STREAM_NOT_ACTIVE", false},
	4009: {4009, "FRAGMENT_METADATA_LIMIT_REACHED", false},
	4010: {4010, "TRACK_NUMBER_MISMATCH", false},
	4011: {4011, "FRAMES_MISSING_FOR_TRACK", false},
	4012: {4012, "MORE_THAN_ALLOWED_TRACKS_FOUND", false},
	4500: {4500, "KMS_KEY_ACCESS_DENIED", false},
	4501: {4501, "KMS_KEY_DISABLED", false},
	4502: {4502, "KMS_KEY_VALIDATION_ERROR", false},
	4503: {4503, "KMS_KEY_UNAVAILABLE", false},
	4504: {4504, "KMS_KEY_INVALID_USAGE", false},
	4505: {4505, "KMS_KEY_INVALID_STATE", false},
	4506: {4506, "KMS_KEY_NOT_FOUND", false},
	4507: {4507, "STREAM_DELETED", false},
	5000: {5000, "INTERNAL_ERROR", true},
	5001: {5001, "ARCHIVAL_ERROR", true},
}

// LookupAckError returns the meaning of an ErrorId; unknown ids are
// retriable, as in the official SDK.
func LookupAckError(id int) AckErrorInfo {
	if e, ok := ackErrors[id]; ok {
		return e
	}
	return AckErrorInfo{id, "UNKNOWN_ACK_ERROR", true}
}
