package sink

import (
	"errors"
	"strings"
	"testing"
)

// The error names the refusal and the loss, and is ErrFragmentsRefused; no
// refusal, no error; a run needs MaxRefusedRun refusals.
func TestRefusals(t *testing.T) {
	var r refusals
	if r.err(false) != nil {
		t.Fatal("an error without refusals")
	}
	r.refused(4501, "KMS_KEY_DISABLED", 30)
	r.refused(4506, "KMS_KEY_NOT_FOUND", 20)
	err := r.err(false)
	want := "the service refused fragments: the stream ended with fragments lost to non-retriable errors, the last KMS_KEY_NOT_FOUND (4506): 2 fragment(s), 50 frame(s) lost"
	if !errors.Is(err, ErrFragmentsRefused) || err.Error() != want {
		t.Fatalf("%v\nwant %s", err, want)
	}
	var s Sink
	s.refused = r
	if s.refusedErr(true) != nil {
		t.Fatalf("a run of %d is below MaxRefusedRun %d", r.run, MaxRefusedRun)
	}
	s.refused.refused(4506, "KMS_KEY_NOT_FOUND", 10)
	if err := s.refusedErr(true); err == nil || !strings.Contains(err.Error(), "3 fragments in a row refused") || !err.(*RefusedError).Run {
		t.Fatalf("run: %v", err)
	}
}
