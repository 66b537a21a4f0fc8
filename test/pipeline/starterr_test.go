package pipeline

import (
	"strings"
	"testing"
	"time"
)

// TestStartFailuresAreOneActionableError: a failure at start is one element
// error (not followed by the base class's "state change failed and some
// element failed to post a proper error message"), and a runtime failure
// (the IoT credentials endpoint cannot be reached) is not called a settings
// problem.
func TestStartFailuresAreOneActionableError(t *testing.T) {
	ep, _, devs := iotEndpoint(t)
	for _, tc := range []struct {
		name, pipeline, want, notWant string
		env                           []string
	}{
		{name: "unreachable IoT endpoint",
			pipeline: "videotestsrc num-buffers=3 ! x264enc ! h264parse ! " + kvssink("cam1", iotProperty("127.0.0.1:1", "", devs["cam1"])),
			want:     "Could not get credentials for stream \"cam1\"", notWant: "Invalid settings"},
		{name: "wrong secret",
			pipeline: "videotestsrc num-buffers=3 ! x264enc ! h264parse ! " + kvssink("cam1"),
			env:      []string{"AWS_SECRET_ACCESS_KEY=wrong-secret"},
			want:     "Could not start streaming to \"cam1\"", notWant: "Invalid settings"},
		// Files named by properties are read at start, in Config.Open: a
		// missing one is a settings error naming the property (its
		// ENOENT is no network failure).
		{name: "missing ca-cert-path file",
			pipeline: "videotestsrc num-buffers=3 ! x264enc ! h264parse ! " + kvssink("cam1", "ca-cert-path=/nonexistent/kvsgo-ca.pem"),
			want:     "ca-cert-path", notWant: "Could not get credentials"},
		{name: "missing e2ee-recipients file",
			pipeline: "videotestsrc num-buffers=3 ! x264enc ! h264parse ! " + kvssink("cam1", "e2ee-recipients=/nonexistent/kvsgo-alice.pub", "e2ee-signing-key=/nonexistent/kvsgo-camera.key"),
			want:     "e2ee-recipients", notWant: "Could not get credentials"},
		{name: "missing ca-cert-path file for kvssrc", pipeline: "kvssrc stream-name=cam1 ca-cert-path=/nonexistent/kvsgo-ca.pem ! fakesink",
			want: "ca-cert-path", notWant: "Could not get credentials"},
		{name: "bad kvssrc setting", pipeline: "kvssrc stream-name=cam1 start-selector=latest ! fakesink",
			want: "Invalid settings for stream \"cam1\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launch(t, ep, 60*time.Second, tc.pipeline, tc.env...)
			if r.rc == 0 || !strings.Contains(r.output, tc.want) || (tc.notWant != "" && strings.Contains(r.output, tc.notWant)) {
				t.Fatalf("rc %d, want an error with %q and without %q:\n%s", r.rc, tc.want, tc.notWant, r.output)
			}
			if n := strings.Count(r.output, "ERROR: from element"); n != 1 {
				t.Errorf("%d element errors, want 1:\n%s", n, r.output)
			}
		})
	}
}
