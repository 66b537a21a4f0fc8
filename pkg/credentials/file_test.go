package credentials

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestParseCredentialFile(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name, text              string
		key, secret, token, exp string
		err                     string
	}{
		{"key and secret", "CREDENTIALS AKID SECRET\n", "AKID", "SECRET", "", "2026-11-23T10:40:00Z", ""},
		{"with expiration and token", "CREDENTIALS AKID 2026-11-23T10:10:00Z SECRET TOKEN", "AKID", "SECRET", "TOKEN", "2026-11-23T10:10:00Z", ""},
		{"expiration capped at 40 min", "CREDENTIALS AKID 2026-11-24T00:00:00Z SECRET TOKEN", "AKID", "SECRET", "TOKEN", "2026-11-23T10:40:00Z", ""},
		{"expiration without token", "CREDENTIALS AKID 2026-11-23T10:10:00Z SECRET", "AKID", "SECRET", "", "2026-11-23T10:10:00Z", ""},
		{"token without expiration", "CREDENTIALS AKID SECRET TOKEN", "AKID", "SECRET", "TOKEN", "2026-11-23T10:40:00Z", ""},
		{"expired", "CREDENTIALS AKID 2026-11-23T09:00:00Z SECRET TOKEN", "", "", "", "", "in the past"},
		{"bad expiration", "CREDENTIALS AKID 2026-11-23T10:10:00.5Z SECRET TOKEN", "", "", "", "", "YYYY-MM-DDTHH:MM:SSZ"},
		{"no keyword", "AKID SECRET", "", "", "", "", "start with the word CREDENTIALS"},
		{"too many fields", "CREDENTIALS A B C D E", "", "", "", "", "5 fields"},
		{"empty", "", "", "", "", "", "CREDENTIALS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseCredentialFile(c.text, now)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "TOKEN") {
					t.Fatalf("error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessKeyID != c.key || got.SecretAccessKey != c.secret || got.SessionToken != c.token || got.Expires.Format(expirationLayout) != c.exp || !got.CanExpire {
				t.Fatalf("got %s %s %s %v", got.AccessKeyID, got.SecretAccessKey, got.SessionToken, got.Expires)
			}
		})
	}
}

// The file comes after the properties and the environment, is read again
// when its credentials are about to expire, and a bad one is an error naming
// it.
func TestCredentialFileSource(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credential")
	noenv := func(string) string { return "" }
	resolve := func(getenv func(string) string) (aws.CredentialsProvider, string, error) {
		r, err := Resolve(context.Background(), Sources{CredentialPath: &path, NoDefaultChain: true}, Options{Getenv: getenv})
		return r.Provider, r.Source, err
	}
	p, src, err := resolve(noenv)
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("missing file: %v %v %s", p, err, src)
	}
	os.WriteFile(path, []byte("CREDENTIALS AKIDFILE SECRETFILE"), 0o600)
	p, src, err = resolve(noenv)
	if err != nil || !strings.Contains(src, path) {
		t.Fatalf("%v %s", err, src)
	}
	c, err := p.Retrieve(context.Background())
	if err != nil || c.AccessKeyID != "AKIDFILE" {
		t.Fatalf("%+v %v", c, err)
	}
	env := map[string]string{"AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s"}
	if _, src, _ := resolve(func(k string) string { return env[k] }); src != "environment" {
		t.Fatalf("the environment should win over the file, got %s", src)
	}
	os.WriteFile(path, []byte("CREDENTIALS AKID 2000-01-01T00:00:00Z S T"), 0o600)
	if _, _, err := resolve(noenv); !errors.Is(err, ErrCredentialFile) || !strings.Contains(err.Error(), path) {
		t.Fatalf("expired file: %v", err)
	}
}

func FuzzParseCredentialFile(f *testing.F) {
	f.Add("CREDENTIALS AKID 2026-11-23T10:10:00Z SECRET TOKEN")
	f.Add("CREDENTIALS AKID SECRET")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredentialFile(s, time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
		if err == nil && (c.AccessKeyID == "" || c.SecretAccessKey == "" || c.Expires.IsZero()) {
			t.Fatalf("accepted %q as %+v", s, c)
		}
	})
}
