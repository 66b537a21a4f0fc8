package core

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// twoSets hands out one set of credentials, then another once asked again.
type twoSets struct {
	mu    sync.Mutex
	calls int
	sets  [2]aws.Credentials
}

func (p *twoSets) Retrieve(context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.sets[min(p.calls, 1)]
	p.calls++
	return c, nil
}

// Credentials the service stops accepting mid-stream (here: they expire at
// the endpoint although the client was not told) are fetched again when a
// new connection is refused with ExpiredTokenException, instead of ending
// the stream: every frame arrives.
func TestExpiredTokenMidStreamRefetches(t *testing.T) {
	cpd, frames := officialFrames(t)
	srv, err := kvslocal.New(kvslocal.Config{Dir: t.TempDir(), Credentials: []kvslocal.Credential{
		{AccessKeyID: "ASIAFIRSTSET", SecretAccessKey: "first-secret", SessionToken: "first-token", Expires: time.Now().Add(2 * time.Second)},
		{AccessKeyID: "ASIASECONDSET", SecretAccessKey: "second-secret", SessionToken: "second-token"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	p := &twoSets{sets: [2]aws.Credentials{
		{AccessKeyID: "ASIAFIRSTSET", SecretAccessKey: "first-secret", SessionToken: "first-token", Source: "test"},
		{AccessKeyID: "ASIASECONDSET", SecretAccessKey: "second-secret", SessionToken: "second-token", Source: "test"},
	}}
	cfg := config(url, "expired-token")
	cfg.Credentials = aws.NewCredentialsCache(p)
	cfg.MaxConnectionDuration = time.Second // a new connection every second
	s := startSink(t, cfg, cpd)
	for _, f := range frames { // 300 frames over about 4 s
		put(t, s, []frame{f})
		time.Sleep(13 * time.Millisecond) // pacing a live source, not waiting for a result
	}
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := summarise(t, srv, "expired-token")
	p.mu.Lock()
	calls := p.calls
	p.mu.Unlock()
	if sum.allFrames != 300 || sum.total != 10 || calls != 2 {
		t.Fatalf("%d frames in %d fragments stored, credentials fetched %d times; want 300 in 10, fetched twice", sum.allFrames, sum.total, calls)
	}
}
