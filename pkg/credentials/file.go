package credentials

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// The official element's rotating credential file, e.g.
//
//	CREDENTIALS AKIDEXAMPLE 2026-11-23T12:00:00Z wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY FwoGZXIvYXdzE...
//	CREDENTIALS AKIDEXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
//
// The expiration (UTC, exactly YYYY-MM-DDTHH:MM:SSZ) and the session token
// are optional. Credentials are used for at most MaxFileCredentialLifetime;
// the file is read again before they expire.
const (
	MaxFileCredentialLifetime = 40 * time.Minute
	maxCredentialFileSize     = 10000
	expirationLayout          = "2006-01-02T15:04:05Z"
)

// ErrCredentialFile is wrapped by every credential-file error.
var ErrCredentialFile = errors.New("credentials: bad credential file")

// FileProvider reads credentials from a file on every Retrieve; wrap it in
// aws.CredentialsCache so that happens only when they are about to expire.
type FileProvider struct {
	Path string
	Now  func() time.Time
}

// Retrieve reads and parses the file.
func (p FileProvider) Retrieve(context.Context) (aws.Credentials, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	f, err := os.Open(p.Path)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w %s: %v", ErrCredentialFile, p.Path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialFileSize+1))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w %s: %v", ErrCredentialFile, p.Path, err)
	}
	if len(b) > maxCredentialFileSize {
		return aws.Credentials{}, fmt.Errorf("%w %s: larger than %d bytes", ErrCredentialFile, p.Path, maxCredentialFileSize)
	}
	c, err := ParseCredentialFile(string(b), now())
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w %s: %v", ErrCredentialFile, p.Path, err)
	}
	return c, nil
}

// String never shows the credentials.
func (p FileProvider) String() string { return "credential file " + p.Path }

// ParseCredentialFile parses the file's text as of now.
func ParseCredentialFile(text string, now time.Time) (aws.Credentials, error) {
	f := strings.Fields(text)
	if len(f) == 0 || f[0] != "CREDENTIALS" {
		return aws.Credentials{}, errors.New(`it must start with the word CREDENTIALS, then the access key id, an optional expiration, the secret key and an optional session token`)
	}
	f = f[1:]
	c := aws.Credentials{Source: "credential file", CanExpire: true}
	var exp time.Time
	hasExp := len(f) >= 3 && looksLikeTime(f[1])
	switch {
	case len(f) == 2:
		c.AccessKeyID, c.SecretAccessKey = f[0], f[1]
	case len(f) == 3 && hasExp:
		c.AccessKeyID, c.SecretAccessKey = f[0], f[2]
	case len(f) == 3:
		c.AccessKeyID, c.SecretAccessKey, c.SessionToken = f[0], f[1], f[2]
	case len(f) == 4 && hasExp:
		c.AccessKeyID, c.SecretAccessKey, c.SessionToken = f[0], f[2], f[3]
	default:
		return aws.Credentials{}, fmt.Errorf("%d fields after CREDENTIALS; want <access key id> [<expiration>] <secret key> [<session token>]", len(f))
	}
	if hasExp {
		t, err := time.Parse(expirationLayout, f[1])
		if err != nil || len(f[1]) != len(expirationLayout) {
			return aws.Credentials{}, fmt.Errorf("expiration %q is not YYYY-MM-DDTHH:MM:SSZ", f[1])
		}
		if !t.After(now) {
			return aws.Credentials{}, fmt.Errorf("expiration %s is in the past", f[1])
		}
		exp = t
	}
	if limit := now.Add(MaxFileCredentialLifetime); exp.IsZero() || exp.After(limit) {
		exp = limit
	}
	c.Expires = exp
	return c, nil
}

// looksLikeTime tells an expiration from a key: it has the timestamp's
// shape (digits, dashes, a T, colons, a final Z).
func looksLikeTime(s string) bool {
	return len(s) >= 11 && s[4] == '-' && strings.HasSuffix(s, "Z") && strings.Contains(s, "T")
}
