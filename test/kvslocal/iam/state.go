package iam

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// The Server's entities, guarded by Server.mu.

// Certificate statuses, as AWS IoT names them.
const (
	CertActive   = "ACTIVE"
	CertInactive = "INACTIVE"
	CertRevoked  = "REVOKED"
)

// namedPolicy is an inline policy (or a trust policy): its name, the
// document as given, and the document parsed.
type namedPolicy struct {
	name string
	doc  string
	p    Policy
}

func newNamed(name string, p Policy) namedPolicy {
	doc, _ := json.Marshal(p)
	return namedPolicy{name: name, doc: string(doc), p: p}
}

type user struct {
	name, id, path string
	created        time.Time
	inline         []namedPolicy
	attached       []string // managed policy ARNs
}

type accessKey struct {
	id, secret, user, status string
	created                  time.Time
}

type role struct {
	name, id, path, description string
	created                     time.Time
	trust                       namedPolicy
	maxSession                  int // seconds
	inline                      []namedPolicy
	attached                    []string // managed policy ARNs
}

type managed struct {
	name, arn, id, path, description string
	doc                              string
	p                                Policy
	created, updated                 time.Time
}

type roleAlias struct {
	name, roleARN     string
	duration          int // seconds
	created, modified time.Time
}

type iotPolicy struct {
	name, doc         string
	p                 Policy
	created, modified time.Time
}

type certificate struct {
	id, pem           string
	status            string // CertActive, CertInactive or CertRevoked
	policies          []string
	created, modified time.Time
}

type thing struct {
	name, id, typeName string
	principals         []string // certificate ids
	version            int
}

type thingType struct {
	name, id   string
	created    time.Time
	deprecated bool
	deprecAt   time.Time
}

// thingID is a stable UUID-shaped id for a name.
func thingID(name string) string {
	h := sha256.Sum256([]byte("thing/" + name))
	x := hex.EncodeToString(h[:16])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func remove(list []string, s string) []string {
	if i := indexOf(list, s); i >= 0 {
		return append(list[:i:i], list[i+1:]...)
	}
	return list
}

func findNamed(list []namedPolicy, name string) int {
	for i, p := range list {
		if p.name == name {
			return i
		}
	}
	return -1
}
