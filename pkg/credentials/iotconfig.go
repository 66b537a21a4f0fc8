package credentials

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The iot-certificate property, as the KVS developer guide documents it:
//
//	iot-certificate="iot-certificate,endpoint=xxx.credentials.iot.us-west-2.amazonaws.com,cert-path=/c.pem,key-path=/k.key,ca-path=/ca.pem,role-aliases=Alias,iot-thing-name=cam1"
//
// The structure's name is ignored. Every field must be a non-empty string:
// numbers need a type, connection-timeout=(string)5, as the official element
// rejects anything GstStructure did not parse as a string. The key set is
// exactly IoTKeys; the last three keys are optional.

// Defaults of the optional iot-certificate fields, as the official element
// sets them.
const (
	DefaultIoTConnectionTimeout = 3 * time.Second
	DefaultIoTCompletionTimeout = 5 * time.Second
)

// IoTKeys are the keys an iot-certificate structure may have, in the order
// the guide lists them.
var IoTKeys = []string{"endpoint", "cert-path", "key-path", "ca-path", "role-aliases", "iot-thing-name", "connection-timeout", "completion-timeout"}

var iotRequired = map[string]bool{"endpoint": true, "cert-path": true, "key-path": true, "ca-path": true, "role-aliases": true}

// ErrIoTCertificate is wrapped by every error about the iot-certificate
// property.
var ErrIoTCertificate = errors.New("credentials: bad iot-certificate")

// IoTFieldError names the iot-certificate field that is wrong.
type IoTFieldError struct {
	Field  string // the key, or "" for the structure as a whole
	Reason string
}

func (e *IoTFieldError) Error() string {
	if e.Field == "" {
		return ErrIoTCertificate.Error() + ": " + e.Reason
	}
	return fmt.Sprintf("%v: %s: %s", ErrIoTCertificate, e.Field, e.Reason)
}

func (e *IoTFieldError) Unwrap() error { return ErrIoTCertificate }

// Field is one field of a GstStructure as the plugin reads it: its GType name
// ("gchararray" for strings) and its value's serialisation.
type Field struct {
	Name  string
	Type  string
	Value string
}

// IoTCertificate is a validated iot-certificate property.
type IoTCertificate struct {
	// Endpoint is the credentials provider's host, optionally with a port
	// (host:port); it is also the TLS server name. No scheme.
	Endpoint  string
	CertPath  string // PEM device certificate (chain allowed)
	KeyPath   string // PEM private key of the certificate
	CAPath    string // PEM file, or a directory of PEM files, that verifies the endpoint
	RoleAlias string // the role-aliases field
	ThingName string // iot-thing-name; defaults to the stream name
	// ThingNameDefaulted says ThingName is the stream name, iot-thing-name
	// being unset (errors say so).
	ThingNameDefaulted bool
	// ConnectionTimeout bounds the dial and TLS handshake; default 3 s.
	ConnectionTimeout time.Duration
	// CompletionTimeout bounds the whole request; default 5 s.
	CompletionTimeout time.Duration
}

// String shows where the credentials come from; the property holds no secret
// itself, only paths.
func (c IoTCertificate) String() string {
	return fmt.Sprintf("iot-certificate endpoint=%s role-alias=%s thing=%s cert=%s", c.Endpoint, c.RoleAlias, c.ThingName, c.CertPath)
}

// ParseIoTCertificate parses the property's serialised GstStructure, as
// gst_structure_from_string reads it, and validates it with IoTFromFields.
func ParseIoTCertificate(s, streamName string) (IoTCertificate, error) {
	fields, err := ParseStructure(s)
	if err != nil {
		return IoTCertificate{}, &IoTFieldError{Reason: err.Error()}
	}
	return IoTFromFields(fields, streamName)
}

// IoTFromFields validates the fields of an iot-certificate structure the way
// the official element does (exact key set, string values only, none empty),
// fills the defaults (thing name = streamName, 3 s and 5 s timeouts) and
// returns the result. It reads no file.
func IoTFromFields(fields []Field, streamName string) (IoTCertificate, error) {
	known := map[string]bool{}
	for _, k := range IoTKeys {
		known[k] = true
	}
	m := map[string]string{}
	for _, f := range fields {
		if !known[f.Name] {
			return IoTCertificate{}, &IoTFieldError{Field: f.Name, Reason: "unknown key; the keys are " + strings.Join(IoTKeys, ", ")}
		}
		if _, dup := m[f.Name]; dup {
			return IoTCertificate{}, &IoTFieldError{Field: f.Name, Reason: "given twice"}
		}
		if f.Type != "gchararray" && f.Type != "string" {
			return IoTCertificate{}, &IoTFieldError{Field: f.Name, Reason: fmt.Sprintf("is a %s, not a string: write %s=(string)%s", f.Type, f.Name, f.Value)}
		}
		if f.Value == "" {
			return IoTCertificate{}, &IoTFieldError{Field: f.Name, Reason: "is empty"}
		}
		m[f.Name] = f.Value
	}
	var missing []string
	for k := range iotRequired {
		if m[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return IoTCertificate{}, &IoTFieldError{Field: strings.Join(missing, ", "), Reason: "missing (required: endpoint, cert-path, key-path, ca-path, role-aliases)"}
	}
	c := IoTCertificate{
		Endpoint: m["endpoint"], CertPath: m["cert-path"], KeyPath: m["key-path"], CAPath: m["ca-path"],
		RoleAlias: m["role-aliases"], ThingName: m["iot-thing-name"],
	}
	if strings.Contains(c.Endpoint, "://") || strings.ContainsAny(c.Endpoint, "/?# ") {
		return IoTCertificate{}, &IoTFieldError{Field: "endpoint", Reason: fmt.Sprintf("%q must be a host name with an optional :port, without scheme or path (e.g. xxx.credentials.iot.us-west-2.amazonaws.com)", c.Endpoint)}
	}
	if strings.ContainsAny(c.RoleAlias, "/?# ") {
		return IoTCertificate{}, &IoTFieldError{Field: "role-aliases", Reason: fmt.Sprintf("%q is not a role alias name", c.RoleAlias)}
	}
	if c.ThingName == "" {
		c.ThingName, c.ThingNameDefaulted = streamName, true
	}
	var err error
	if c.ConnectionTimeout, err = seconds(m, "connection-timeout", DefaultIoTConnectionTimeout); err != nil {
		return IoTCertificate{}, err
	}
	if c.CompletionTimeout, err = seconds(m, "completion-timeout", DefaultIoTCompletionTimeout); err != nil {
		return IoTCertificate{}, err
	}
	if c.CompletionTimeout < c.ConnectionTimeout {
		// producer-c resets both when they are inconsistent.
		c.ConnectionTimeout, c.CompletionTimeout = DefaultIoTConnectionTimeout, DefaultIoTCompletionTimeout
	}
	return c, nil
}

// seconds reads an optional whole number of seconds; 0 means the default.
func seconds(m map[string]string, key string, def time.Duration) (time.Duration, error) {
	v, ok := m[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return 0, &IoTFieldError{Field: key, Reason: fmt.Sprintf("%q is not a whole number of seconds", v)}
	}
	if n == 0 {
		return def, nil
	}
	return time.Duration(n) * time.Second, nil
}

// ParseStructure reads a serialised GstStructure, "name,key=value,…", into
// its fields, inferring types as gst_structure_from_string does for untyped
// values: integers are "gint", decimals "gdouble", true/false/yes/no
// "gboolean", anything else (or anything quoted) "gchararray". An explicit
// (type) prefix is kept as written, with (string) and (gchararray) meaning a
// string. A trailing ';' is allowed.
func ParseStructure(s string) ([]Field, error) {
	p := &structParser{s: strings.TrimSpace(s)}
	p.s = strings.TrimSuffix(p.s, ";")
	name := p.token()
	if name == "" {
		return nil, errors.New("the structure needs a name first, e.g. iot-certificate,endpoint=…")
	}
	var fields []Field
	for {
		p.space()
		if p.done() {
			return fields, nil
		}
		if !p.eat(',') {
			return nil, fmt.Errorf("expected ',' at offset %d", p.i)
		}
		p.space()
		if p.done() {
			return fields, nil // a trailing comma
		}
		key := p.token()
		if key == "" {
			return nil, fmt.Errorf("expected a field name at offset %d", p.i)
		}
		p.space()
		if !p.eat('=') {
			return nil, fmt.Errorf("field %s: expected '=' at offset %d", key, p.i)
		}
		p.space()
		typ := ""
		if p.eat('(') {
			typ = p.token()
			if !p.eat(')') || typ == "" {
				return nil, fmt.Errorf("field %s: bad type at offset %d", key, p.i)
			}
			p.space()
		}
		val, quoted, err := p.value()
		if err != nil {
			return nil, fmt.Errorf("field %s: %v", key, err)
		}
		switch {
		case typ == "string" || typ == "gchararray" || typ == "str" || typ == "s":
			typ = "gchararray"
		case typ != "":
		case quoted:
			typ = "gchararray"
		default:
			typ = inferType(val)
		}
		fields = append(fields, Field{Name: key, Type: typ, Value: val})
	}
}

type structParser struct {
	s string
	i int
}

func (p *structParser) done() bool { return p.i >= len(p.s) }

func (p *structParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *structParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// isStringChar is GStreamer's GST_ASCII_IS_STRING: the characters an
// unquoted name or value may have.
func isStringChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-+/:.", c) >= 0
}

func (p *structParser) token() string {
	j := p.i
	for p.i < len(p.s) && isStringChar(p.s[p.i]) {
		p.i++
	}
	return p.s[j:p.i]
}

func (p *structParser) value() (string, bool, error) {
	if !p.eat('"') {
		v := p.token()
		if v == "" && !p.done() && p.s[p.i] != ',' {
			return "", false, fmt.Errorf("unexpected %q at offset %d (quote values with other characters)", p.s[p.i], p.i)
		}
		return v, false, nil
	}
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), true, nil
		case '\\':
			if p.i >= len(p.s) {
				return "", true, errors.New("unterminated escape")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", true, errors.New("unterminated quoted value")
}

func inferType(v string) string {
	if _, err := strconv.ParseInt(v, 0, 64); err == nil {
		return "gint"
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil && strings.ContainsAny(v, "0123456789") {
		return "gdouble"
	}
	switch strings.ToLower(v) {
	case "true", "false", "yes", "no", "t", "f":
		return "gboolean"
	}
	return "gchararray"
}
