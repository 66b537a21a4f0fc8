package iam

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// The walkthrough's certificates live as long as kvslocal's test
// certificates, and WalkthroughExpired tells when one has expired.
func TestWalkthroughExpiry(t *testing.T) {
	dir := t.TempDir()
	ca, _, devs, err := Walkthrough(dir, []string{"cam1"}, WalkthroughOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if na := ca.Cert.NotAfter; na.Before(time.Now().Add(kvslocal.TestCertLifetime - time.Hour)) {
		t.Fatalf("CA valid until %v, want about %v from now", na, kvslocal.TestCertLifetime)
	}
	if WalkthroughExpired(dir, time.Now()) {
		t.Fatal("a new walkthrough counts as expired")
	}
	if !WalkthroughExpired(dir, time.Now().Add(kvslocal.TestCertLifetime+time.Hour)) {
		t.Fatal("not expired after its lifetime")
	}
	// A device certificate that has expired on its own counts too.
	past := time.Now().Add(-48 * time.Hour)
	old, err := ca.Issue(IssueOptions{CommonName: "cam1", NotBefore: past, NotAfter: past.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(devs["cam1"].CertPath, old.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if !WalkthroughExpired(dir, time.Now()) {
		t.Fatal("an expired device certificate went unnoticed")
	}
	// Missing files are not expiry: whoever loads them reports it.
	if WalkthroughExpired(filepath.Join(dir, "none"), time.Now()) {
		t.Fatal("an empty directory counts as expired")
	}
}
