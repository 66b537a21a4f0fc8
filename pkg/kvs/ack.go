package kvs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// AckEventType is the EventType of a PutMedia acknowledgement.
type AckEventType string

// Acknowledgement types.
const (
	AckBuffering  AckEventType = "BUFFERING" // the service started receiving the fragment
	AckReceived   AckEventType = "RECEIVED"  // the fragment was received and parsed
	AckPersisted  AckEventType = "PERSISTED" // durably stored (only with retention > 0)
	AckErrorEvent AckEventType = "ERROR"     // the fragment was rejected; ErrorID says why
	AckIdle       AckEventType = "IDLE"      // keep-alive while no data arrives
)

// Ack is one acknowledgement from the PutMedia response stream.
type Ack struct {
	EventType AckEventType
	// FragmentTimecode is the fragment's Cluster timecode in MKV units
	// (milliseconds with the default timecode scale).
	FragmentTimecode uint64
	FragmentNumber   string // decimal digits, at most MaxFragmentNumberLen
	ErrorID          int    // ERROR only; see LookupAckError
	ErrorCode        string // ERROR only, informational (e.g. MAX_FRAGMENT_DURATION_REACHED)
}

// MaxFragmentNumberLen bounds FragmentNumber, as in the official parser.
const MaxFragmentNumberLen = 128

// DefaultMaxAckLen bounds one acknowledgement object when NewAckDecoder is
// given no bound; real ones are about 150 bytes.
const DefaultMaxAckLen = 4096

// ErrMalformedAck is wrapped by every acknowledgement parsing error.
var ErrMalformedAck = errors.New("malformed PutMedia acknowledgement")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformedAck}, args...)...)
}

// Keys of an acknowledgement object.
const (
	keyEventType = 1 << iota
	keyFragmentTimecode
	keyFragmentNumber
	keyErrorID
	keyErrorCode
)

// ParseAck parses one acknowledgement: a JSON object with EventType (one of
// the five types), FragmentTimecode (an unsigned 64-bit integer),
// FragmentNumber (a string of 1 to 128 digits), ErrorId (an integer; ERROR
// needs a non-zero one, as in the official parser) and ErrorCode (a string). Unknown keys are ignored,
// whatever their value (nested objects and arrays included); a duplicate key,
// a wrongly typed value or anything after the object is an error. Every
// error wraps ErrMalformedAck and names the problem.
func ParseAck(b []byte) (Ack, error) {
	if a, seen, ok := parseCanonicalAck(b); ok {
		return a, validateAck(&a, seen)
	}
	return parseAckJSON(b)
}

// parseAckJSON is ParseAck through a JSON decoder, for any form.
func parseAckJSON(b []byte) (Ack, error) {
	var a Ack
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return a, malformed("not a JSON object: %q", excerptBytes(b))
	}
	seen, err := decodeAckMembers(dec, b, &a)
	if err != nil {
		return a, err
	}
	if _, err := dec.Token(); err != nil {
		return a, malformed("%v in %q", err, excerptBytes(b))
	}
	if rest := b[dec.InputOffset():]; len(bytes.TrimSpace(rest)) != 0 {
		return a, malformed("data after the object: %q", excerptBytes(rest))
	}
	return a, validateAck(&a, seen)
}

// parseCanonicalAck reads, without a JSON decoder, an acknowledgement in
// the form the service writes: known keys only, each once, no whitespace,
// strings without escapes, numbers as plain digits. ok is false for
// anything else, which ParseAck's decoder then reads (and reports, when it
// is wrong): both give the same result for what this accepts.
func parseCanonicalAck(b []byte) (a Ack, seen int, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return a, 0, false
	}
	i := 1
	for i < len(b)-1 {
		if seen != 0 {
			if b[i] != ',' {
				return a, 0, false
			}
			i++
		}
		key, n := plainString(b[i:])
		if n == 0 || i+n >= len(b) || b[i+n] != ':' {
			return a, 0, false
		}
		i += n + 1
		bit := ackKey(string(key))
		if bit == 0 || seen&bit != 0 {
			return a, 0, false
		}
		seen |= bit
		switch bit {
		case keyEventType, keyFragmentNumber, keyErrorCode:
			v, n := plainString(b[i:])
			if n == 0 {
				return a, 0, false
			}
			i += n
			switch bit {
			case keyEventType:
				a.EventType = eventType(v)
			case keyFragmentNumber:
				if !digits(string(v)) {
					return a, 0, false
				}
				a.FragmentNumber = string(v)
			default:
				a.ErrorCode = string(v)
			}
		default:
			n := 0
			for i+n < len(b) && b[i+n] >= '0' && b[i+n] <= '9' {
				n++
			}
			if n == 0 || (n > 1 && b[i] == '0') {
				return a, 0, false
			}
			v, err := strconv.ParseUint(string(b[i:i+n]), 10, 64)
			if err != nil || (bit == keyErrorID && v > math.MaxInt32) {
				return a, 0, false
			}
			i += n
			if bit == keyErrorID {
				a.ErrorID = int(v)
			} else {
				a.FragmentTimecode = v
			}
		}
	}
	return a, seen, i == len(b)-1
}

// eventType returns the AckEventType v names, without a copy for the
// known ones.
func eventType(v []byte) AckEventType {
	for _, t := range [...]AckEventType{AckBuffering, AckReceived, AckPersisted, AckIdle, AckErrorEvent} {
		if string(v) == string(t) {
			return t
		}
	}
	return AckEventType(v)
}

// plainString returns the contents and length of the JSON string at the
// start of b if it has no escapes and only printable ASCII, else n == 0.
func plainString(b []byte) (s []byte, n int) {
	if len(b) < 2 || b[0] != '"' {
		return nil, 0
	}
	for j := 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[1:j], j + 1
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, 0
		}
	}
	return nil, 0
}

// ackKey is the bit of a known key of an acknowledgement object, or 0.
func ackKey(key string) int {
	switch key {
	case "EventType":
		return keyEventType
	case "FragmentTimecode":
		return keyFragmentTimecode
	case "FragmentNumber":
		return keyFragmentNumber
	case "ErrorId":
		return keyErrorID
	case "ErrorCode":
		return keyErrorCode
	}
	return 0
}

// decodeAckMembers reads the members of the object dec is inside (b is its
// text, for error messages) into a, up to its closing brace, and returns
// the bits of the known keys it had.
func decodeAckMembers(dec *json.Decoder, b []byte, a *Ack) (seen int, err error) {
	var unknown []string
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return seen, malformed("%v in %q", err, excerptBytes(b))
		}
		key, _ := kt.(string)
		bit := ackKey(key)
		if bit == 0 {
			if unknown, err = skipUnknownMember(dec, key, unknown); err != nil {
				return seen, err
			}
			continue
		}
		if seen&bit != 0 {
			return seen, malformed("duplicate key %q", key)
		}
		seen |= bit
		vt, err := dec.Token()
		if err != nil {
			return seen, malformed("value of %q: %v", key, err)
		}
		if err := setAckField(a, key, vt); err != nil {
			return seen, err
		}
	}
	return seen, nil
}

// skipUnknownMember skips the value of an unknown key, whatever it is,
// after checking that the key was not seen before (in unknown, which it
// returns with key added).
func skipUnknownMember(dec *json.Decoder, key string, unknown []string) ([]string, error) {
	for _, u := range unknown {
		if u == key {
			return unknown, malformed("duplicate key %q", excerptBytes([]byte(key)))
		}
	}
	unknown = append(unknown, key)
	var skip json.RawMessage
	if err := dec.Decode(&skip); err != nil {
		return unknown, malformed("value of %q: %v", excerptBytes([]byte(key)), err)
	}
	return unknown, nil
}

// setAckField checks the value vt of the known key and stores it in a.
func setAckField(a *Ack, key string, vt json.Token) error {
	switch key {
	case "EventType":
		s, ok := vt.(string)
		if !ok {
			return malformed("EventType is not a string: %s", tokenText(vt))
		}
		a.EventType = AckEventType(s)
	case "FragmentTimecode":
		n, ok := vt.(json.Number)
		v, err := strconv.ParseUint(string(n), 10, 64)
		if !ok || err != nil {
			return malformed("FragmentTimecode %s is not an unsigned 64-bit integer", tokenText(vt))
		}
		a.FragmentTimecode = v
	case "FragmentNumber":
		s, ok := vt.(string)
		if !ok || !digits(s) {
			return malformed("FragmentNumber %s is not a string of 1 to %d digits", tokenText(vt), MaxFragmentNumberLen)
		}
		a.FragmentNumber = s
	case "ErrorId":
		n, ok := vt.(json.Number)
		v, err := strconv.ParseUint(string(n), 10, 64)
		if !ok || err != nil || v > math.MaxInt32 {
			return malformed("ErrorId %s is not an integer in 0..%d", tokenText(vt), math.MaxInt32)
		}
		a.ErrorID = int(v)
	case "ErrorCode":
		s, ok := vt.(string)
		if !ok {
			return malformed("ErrorCode is not a string: %s", tokenText(vt))
		}
		a.ErrorCode = s
	}
	return nil
}

// validateAck checks what a complete object said: a known EventType, and a
// non-zero ErrorId for ERROR (seen holds the bits of the keys present).
func validateAck(a *Ack, seen int) error {
	switch a.EventType {
	case AckBuffering, AckReceived, AckPersisted, AckIdle:
	case AckErrorEvent:
		if seen&keyErrorID == 0 || a.ErrorID == 0 {
			return malformed("ERROR without ErrorId")
		}
	case "":
		return malformed("no EventType")
	default:
		return malformed("unknown EventType %q", excerptBytes([]byte(a.EventType)))
	}
	return nil
}

func tokenText(t json.Token) string {
	switch v := t.(type) {
	case string:
		return strconv.Quote(excerptBytes([]byte(v)))
	case json.Number:
		return excerptBytes([]byte(v))
	case json.Delim:
		return "an object or array"
	case nil:
		return "null"
	}
	return fmt.Sprint(t)
}

func digits(s string) bool {
	if len(s) == 0 || len(s) > MaxFragmentNumberLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// excerptBytes returns at most 64 bytes of b for an error message.
func excerptBytes(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// AckDecoder reads acknowledgements from a PutMedia response body: JSON
// objects separated by newlines, other whitespace or nothing at all, with
// bounded memory.
type AckDecoder struct {
	r   *bufio.Reader
	max int
	buf []byte
	err error // sticky: framing errors, read errors, io.EOF
}

// NewAckDecoder reads from r. An object longer than maxLen bytes is an error;
// maxLen <= 0 means DefaultMaxAckLen.
func NewAckDecoder(r io.Reader, maxLen int) *AckDecoder {
	if maxLen <= 0 {
		maxLen = DefaultMaxAckLen
	}
	return &AckDecoder{r: bufio.NewReaderSize(r, 4096), max: maxLen}
}

// Next returns the next acknowledgement, io.EOF at a clean end, or an error.
//
// Objects are framed by counting braces and brackets outside strings, so a
// '}' inside a nested object or a string does not end an acknowledgement. An
// object that is framed but does not parse (ParseAck's errors) is skipped:
// Next may be called again. Framing errors (a byte other than whitespace
// between objects, an object longer than the bound, the stream ending inside
// an object, which also wraps io.ErrUnexpectedEOF) and read errors are
// returned again by every later call.
func (d *AckDecoder) Next() (Ack, error) {
	if d.err != nil {
		return Ack{}, d.err
	}
	d.buf = d.buf[:0]
	depth, inStr, esc := 0, false, false
	for {
		c, err := d.r.ReadByte()
		if err != nil {
			switch {
			case err == io.EOF && len(d.buf) > 0:
				d.err = fmt.Errorf("%w: the stream ended inside an acknowledgement after %d bytes: %q: %w",
					ErrMalformedAck, len(d.buf), excerptBytes(d.buf), io.ErrUnexpectedEOF)
			default:
				d.err = err
			}
			return Ack{}, d.err
		}
		if depth == 0 {
			switch c {
			case '{':
			case ' ', '\t', '\r', '\n':
				continue
			default:
				d.err = malformed("unexpected byte %q between acknowledgements", c)
				return Ack{}, d.err
			}
		}
		if len(d.buf) >= d.max {
			d.err = malformed("acknowledgement longer than %d bytes", d.max)
			return Ack{}, d.err
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
	Retriable bool // resending the fragment may succeed
}

// ackErrors is the official producer's table (PIC SERVICE_CALL_RESULT and
// serviceCallResultRetry): only stream read errors, connection duration and
// the service's internal and archival errors are retried.
var ackErrors = map[int]AckErrorInfo{
	4000: {4000, "STREAM_READ_ERROR", true},
	4001: {4001, "FRAGMENT_SIZE_REACHED", false},
	4002: {4002, "FRAGMENT_DURATION_REACHED", false},
	4003: {4003, "CONNECTION_DURATION_REACHED", true},
	4004: {4004, "FRAGMENT_TIMECODE_NOT_MONOTONIC", false},
	4005: {4005, "MULTI_TRACK_MKV", false},
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
	5000: {5000, "ACK_INTERNAL_ERROR", true},
	5001: {5001, "FRAGMENT_ARCHIVAL_ERROR", true},
}

// LookupAckError returns the meaning of an ErrorId; unknown ids are
// UNKNOWN_ACK_ERROR and retriable, as in the official SDK.
func LookupAckError(id int) AckErrorInfo {
	if e, ok := ackErrors[id]; ok {
		return e
	}
	return AckErrorInfo{id, "UNKNOWN_ACK_ERROR", true}
}
