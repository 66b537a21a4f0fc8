package core

import (
	"context"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// The endpoint goes away mid-stream and comes back on the same address: the
// core reconnects, replays what was not acknowledged, and every frame is
// stored (a fragment may be stored twice, never lost).
func TestReconnectReplaysUnacknowledged(t *testing.T) {
	cpd, frames := officialFrames(t)
	dir := t.TempDir()
	creds := []kvslocal.Credential{{AccessKeyID: accessKey, SecretAccessKey: secretKey}}
	srv, err := kvslocal.New(kvslocal.Config{Dir: dir, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := url[len("http://"):]

	s := startSink(t, config(url, "replay"), cpd)
	ctx := context.Background()
	put(t, s, frames[:150])
	time.Sleep(300 * time.Millisecond) // let some of it go out
	srv.Close()
	put(t, s, frames[150:200])

	srv2, err := kvslocal.New(kvslocal.Config{Dir: dir, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv2.Start(addr); err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	put(t, s, frames[200:])
	if err := s.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	frags, err := srv2.Fragments("replay")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	total := 0
	for _, f := range frags {
		seen[f.Timecode]++
		if seen[f.Timecode] == 1 {
			total += f.Frames
		}
	}
	if len(seen) != 10 || total != 300 {
		t.Fatalf("%d distinct fragments with %d frames stored, want 10 and 300", len(seen), total)
	}
	if len(frags) > 12 {
		t.Fatalf("%d fragments stored for 10: more than one duplicate per fault", len(frags))
	}
	t.Logf("%d fragments stored (%d duplicates after one outage)", len(frags), len(frags)-10)
}
