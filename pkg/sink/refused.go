package sink

import (
	"errors"
	"fmt"
)

// Loss is never silent. A fragment the service refuses with a
// non-retriable ERROR acknowledgement (a KMS key missing, disabled or
// denied, invalid media: resending cannot cure it) is lost. The stream goes
// on after such a refusal, since the cause may be fixed while it runs (a key
// enabled again), but:
//
//   - MaxRefusedRun refusals in a row, with no fragment stored in between,
//     end the stream with a *RefusedError: every fragment is being lost;
//   - a stream that reaches its end having lost any fragment this way ends
//     with a *RefusedError too, so that EOS does not report success.
//
// Both errors name the last refusal's ErrorId and name and count the
// fragments and frames lost.

// MaxRefusedRun is how many fragments in a row the service may refuse with
// non-retriable errors before the stream fails: one or two may be a state
// being fixed (a key re-enabled); three in a row (6 s of video at the
// default 2 s fragments) mean every fragment is lost.
const MaxRefusedRun = 3

// ErrFragmentsRefused matches every *RefusedError.
var ErrFragmentsRefused = errors.New("the service refused fragments")

// RefusedError reports fragments lost to non-retriable refusals.
type RefusedError struct {
	ErrorID   int    // the last refusal's ErrorId, e.g. 4506
	ErrorName string // its name, e.g. KMS_KEY_NOT_FOUND
	Fragments int    // fragments refused (lost) in the stream
	Frames    int    // their frames
	// Run is set when MaxRefusedRun refusals in a row ended the stream;
	// otherwise the stream reached its end having lost fragments.
	Run bool
}

func (e *RefusedError) Error() string {
	what := "the stream ended with fragments lost to non-retriable errors"
	if e.Run {
		what = fmt.Sprintf("%d fragments in a row refused with non-retriable errors", MaxRefusedRun)
	}
	return fmt.Sprintf("%s: %s, the last %s (%d): %d fragment(s), %d frame(s) lost",
		ErrFragmentsRefused, what, e.ErrorName, e.ErrorID, e.Fragments, e.Frames)
}

func (e *RefusedError) Is(target error) bool { return target == ErrFragmentsRefused }

// refusals counts the fragments refused so far (guarded by Sink.mu).
type refusals struct {
	run, fragments, frames int
	lastID                 int
	lastName               string
}

// refused notes a fragment refused with a non-retriable error.
func (r *refusals) refused(id int, name string, frames int) {
	r.run++
	r.fragments++
	r.frames += frames
	r.lastID, r.lastName = id, name
}

// err is the RefusedError for the refusals so far, or nil if none.
func (r *refusals) err(run bool) error {
	if r.fragments == 0 {
		return nil
	}
	return &RefusedError{ErrorID: r.lastID, ErrorName: r.lastName, Fragments: r.fragments, Frames: r.frames, Run: run}
}

// refusedErr is the terminal error for the refusals so far: with run set,
// only once MaxRefusedRun refusals came in a row.
func (s *Sink) refusedErr(run bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if run && s.refused.run < MaxRefusedRun {
		return nil
	}
	return s.refused.err(run)
}
