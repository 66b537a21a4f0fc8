//go:build !kvsgo_nosharedconfig

package credentials

import (
	"os"
	"path/filepath"
	"testing"
)

// The SDK's chain reads the shared credentials file, with AWS_PROFILE; the
// official sources come first.
func TestDefaultChainProfiles(t *testing.T) {
	dir := isolate(t)
	os.WriteFile(filepath.Join(dir, "credentials"), []byte("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s\n[cam]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n"), 0o600)
	if k, r := retrieveKey(t, Sources{}, Options{Region: "us-west-2"}); k != "AKIDDEFAULT" || r.Source != "default chain" {
		t.Fatalf("%s from %s", k, r.Source)
	}
	t.Setenv("AWS_PROFILE", "cam")
	if k, _ := retrieveKey(t, Sources{}, Options{Region: "us-west-2"}); k != "AKIDPROFILE" {
		t.Fatalf("profile: %s", k)
	}
	// The official sources come first.
	path := filepath.Join(dir, "kvs-credential")
	os.WriteFile(path, []byte("CREDENTIALS AKIDFILE SECRETFILE"), 0o600)
	if k, _ := retrieveKey(t, Sources{CredentialPath: &path}, Options{Region: "us-west-2"}); k != "AKIDFILE" {
		t.Fatalf("credential file should win: %s", k)
	}
}
