//go:build kvsgo_nosharedconfig

package credentials

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Without the SDK's config package, shared config and credentials files
// are not read: a profile is no source, and the error says what this build
// reads.
func TestSmallChainReadsNoProfiles(t *testing.T) {
	dir := isolate(t)
	os.WriteFile(filepath.Join(dir, "credentials"), []byte("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s\n"), 0o600)
	_, err := Resolve(context.Background(), Sources{}, Options{Region: "us-west-2"})
	if !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("err = %v, want ErrNoCredentials", err)
	}
	if !strings.Contains(EnvironmentHint, "without shared config files") {
		t.Fatalf("hint %q does not say that profiles are not read", EnvironmentHint)
	}
}

// Container credentials over plain http only from loopback or the ECS/EKS
// container addresses; the relative URI is ECS's.
func TestContainerURL(t *testing.T) {
	for _, c := range []struct {
		full, rel, want, err string
	}{
		{rel: "/v2/creds", want: "http://169.254.170.2/v2/creds"},
		{full: "http://127.0.0.1:9/c", want: "http://127.0.0.1:9/c"},
		{full: "http://[::1]:9/c", want: "http://[::1]:9/c"},
		{full: "http://localhost/c", want: "http://localhost/c"},
		{full: "http://169.254.170.23/v1/credentials", want: "http://169.254.170.23/v1/credentials"},
		{full: "http://[fd00:ec2::23]/v1/credentials", want: "http://[fd00:ec2::23]/v1/credentials"},
		{full: "https://creds.example.com/c", want: "https://creds.example.com/c"},
		{full: "http://creds.example.com/c", err: "plain http is allowed to loopback"},
		{full: "http://10.0.0.1/c", err: "plain http is allowed to loopback"},
		{full: "ftp://127.0.0.1/c", err: "is not an http(s) URL"},
		{},
	} {
		t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", c.full)
		t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", c.rel)
		got, err := containerURL()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %q %v, want an error with %q", c.full, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q %q: %q %v, want %q", c.full, c.rel, got, err, c.want)
		}
	}
	// A refused URI is the chain's error, not a silent fall-through to
	// instance metadata.
	isolate(t)
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.1/c")
	if _, err := Resolve(context.Background(), Sources{}, Options{Region: "us-west-2"}); !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("err = %v", err)
	}
}
