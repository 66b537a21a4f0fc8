package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// Secrets never reach the debug log, even at GST_DEBUG=*:9, nor an error
// message: a stream with temporary credentials (key, secret, session
// token) and one whose secret is wrong are run with every category at
// level 9, and both logs and outputs are searched for the secret and the
// token. The credentials come from the environment, not the pipeline
// string, which GStreamer itself logs.
func TestSecretsNeverLogged(t *testing.T) {
	const (
		key    = "ASIAKVSGOSECRETSTEST"
		secret = "s3cr3t-must-never-be-logged-0123456789"
		token  = "t0ken-must-never-be-logged-abcdefghijklmnop"
		wrong  = "wr0ng-s3cr3t-must-never-be-logged-98765"
	)
	srv, err := kvslocal.New(kvslocal.Config{Dir: t.TempDir(),
		Credentials: []kvslocal.Credential{{AccessKeyID: key, SecretAccessKey: secret, SessionToken: token}}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ep := &endpoint{srv: srv, url: url}
	for _, c := range []struct {
		name, secret string
		ok           bool
	}{{"streaming", secret, true}, {"wrong secret", wrong, false}} {
		t.Run(c.name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "gst-debug.log")
			r := launch(t, ep, 120*time.Second, "videotestsrc num-buffers=30 ! video/x-raw,width=160,height=120 ! x264enc key-int-max=10 ! h264parse ! kvssink stream-name=secrets",
				"AWS_ACCESS_KEY_ID="+key, "AWS_SECRET_ACCESS_KEY="+c.secret, "AWS_SESSION_TOKEN="+token,
				"GST_DEBUG=*:9", "GST_DEBUG_NO_COLOR=1", "GST_DEBUG_FILE="+logPath)
			if (r.rc == 0) != c.ok {
				t.Fatalf("exit %d:\n%s", r.rc, r.output)
			}
			log, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(log, []byte("kvssink")) || len(log) < 100_000 {
				t.Fatalf("the debug log (%d bytes) does not look like a *:9 log of kvssink", len(log))
			}
			for _, s := range []string{c.secret, token} {
				if bytes.Contains(log, []byte(s)) || strings.Contains(r.output, s) {
					t.Fatalf("%q appears in the debug log or the output", s[:8]+"...")
				}
			}
			if !c.ok && !strings.Contains(r.output, "ERROR") {
				t.Fatalf("no element error for a wrong secret:\n%s", r.output)
			}
		})
	}
}
