// Package credentials chooses where kvssink's AWS credentials come from and
// returns them as an aws.CredentialsProvider wrapped in aws-sdk-go-v2's
// CredentialsCache. One file per source.
//
// It must not import GStreamer or glib, nor use cgo.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ErrNoCredentials is returned when no source yields credentials.
var ErrNoCredentials = errors.New("credentials: no AWS credentials found: set the access-key and secret-key properties, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a credential-path file")

// Sources are the credential inputs of the element.
type Sources struct {
	AccessKey    *string
	SecretKey    *string
	SessionToken *string
	// CredentialPath is the official rotating credential file; it is used
	// when it exists and nothing before it in the precedence gave keys.
	CredentialPath *string
}

// Resolve picks the first source that is configured, in the documented
// precedence: the static access-key/secret-key properties, then the
// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN environment, then
// the credential file (when it exists; it is read now, so that a bad file is
// an error at start). It returns the provider and the name of the source it
// chose.
func Resolve(src Sources, getenv func(string) string) (aws.CredentialsProvider, string, error) {
	if p, ok, err := fromProperties(src); err != nil || ok {
		return cache(p), "properties", err
	}
	if p, ok := fromEnv(getenv); ok {
		return cache(p), "environment", nil
	}
	if path := str(src.CredentialPath); path != "" {
		if _, err := os.Stat(path); err == nil {
			p := FileProvider{Path: path}
			if _, err := p.Retrieve(context.Background()); err != nil {
				return nil, "", err
			}
			return cache(p), "credential file " + path, nil
		}
	}
	return nil, "", ErrNoCredentials
}

// fileGrace is how long before expiry file credentials are read again, as
// the official element does (5 s + 30 s + 3 s).
const fileGrace = 38 * time.Second

func cache(p aws.CredentialsProvider) aws.CredentialsProvider {
	if p == nil {
		return nil
	}
	return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = fileGrace })
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func fromProperties(src Sources) (aws.CredentialsProvider, bool, error) {
	ak, sk := str(src.AccessKey), str(src.SecretKey)
	switch {
	case ak == "" && sk == "":
		return nil, false, nil
	case ak == "":
		return nil, true, fmt.Errorf("credentials: secret-key is set but access-key is not")
	case sk == "":
		return nil, true, fmt.Errorf("credentials: access-key %s is set but secret-key is not", Redact(ak))
	}
	return static{aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk, SessionToken: str(src.SessionToken), Source: "kvssink properties"}}, true, nil
}

func fromEnv(getenv func(string) string) (aws.CredentialsProvider, bool) {
	ak, sk := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if ak == "" || sk == "" {
		return nil, false
	}
	return static{aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk, SessionToken: getenv("AWS_SESSION_TOKEN"), Source: "environment"}}, true
}

// Redact shows an access key id the way AWS consoles do: its first four
// characters. Secrets are never shown at all.
func Redact(accessKeyID string) string {
	if len(accessKeyID) <= 4 {
		return "****"
	}
	return accessKeyID[:4] + "****"
}
