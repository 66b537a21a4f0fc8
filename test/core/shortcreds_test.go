package core

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvsgo/kvsgo/pkg/clock"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// shortLived issues credential sets that live life on the fake clock and
// hands a set out again until window before it expires, as
// aws.CredentialsCache with that expiry window does. With life shorter than
// window (credentials.ExpiryWindow is 38 s) every call gets a new set.
type shortLived struct {
	mu        sync.Mutex
	clk       *clock.Fake
	life, win time.Duration
	cur       aws.Credentials
	issued    int
}

func (p *shortLived) Retrieve(context.Context) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clk.Now()
	if p.issued == 0 || !now.Before(p.cur.Expires.Add(-p.win)) {
		p.issued++
		p.cur = aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, CanExpire: true, Expires: now.Add(p.life), Source: "short-lived"}
	}
	return p.cur, nil
}

func (p *shortLived) Invalidate() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur.Expires = time.Time{}
}

func (p *shortLived) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issued
}

// However short-lived the credentials, the PutMedia connection is rotated
// at most once per set, never at every fragment: 150 s of stream on the
// fake clock with sets that live 25 s (under the 30 s rotation grace and
// the 38 s refresh window) and with sets that live 50 s.
func TestShortLivedCredentialsRotateOncePerSet(t *testing.T) {
	cpd, one := officialFrames(t)
	var frames []frame
	for r := range 15 { // 150 s, a key frame every second
		for _, f := range one {
			frames = append(frames, frame{f.pts + time.Duration(r)*10*time.Second, f.key, f.data})
		}
	}
	for _, c := range []struct {
		life, win time.Duration
		minConn   int // a connection never outlives its set
		maxConn   int // one rotation per set: each connection lives at least half its set
	}{
		{life: 25 * time.Second, win: 38 * time.Second, minConn: 150 / 25, maxConn: 150*2/25 + 1},
		{life: 50 * time.Second, win: 38 * time.Second, minConn: 150 / 50, maxConn: 150*2/50 + 1},
	} {
		t.Run(c.life.String(), func(t *testing.T) {
			srv, url := startEndpoint(t, withoutCaptures)
			name := "short-" + c.life.String()
			fake := clock.NewFake(time.Now())
			creds := &shortLived{clk: fake, life: c.life, win: c.win}
			cfg := config(url, name)
			cfg.Clock, cfg.Credentials = fake, creds
			ev := &events{}
			cfg.OnEvent = ev.add
			s := startSink(t, cfg, cpd)
			for _, f := range frames {
				if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
					t.Fatal(err)
				}
				// Let the upload goroutine arm its watchdog before time
				// moves on (bounded: a connection being opened arms none),
				// and give the loopback network a millisecond of real time
				// per frame, so that fake time never outruns the end of a
				// rotated connection's response (its drain deadline is on
				// the fake clock too).
				time.Sleep(time.Millisecond)
				for deadline := time.Now().Add(time.Second); fake.Waiters() == 0 && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				fake.Advance(time.Second / 30)
			}
			if err := s.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
			conns := int(s.Metrics().Connections)
			lost := len(ev.of(sink.EventConnectionLost))
			t.Logf("%d connections, %d credential sets issued, %d lost", conns, creds.count(), lost)
			if lost != 0 {
				t.Errorf("%d connections lost", lost)
			}
			if conns < c.minConn || conns > c.maxConn {
				t.Errorf("%d connections in 150 s with %v credentials, want %d to %d", conns, c.life, c.minConn, c.maxConn)
			}
			if sum := summarise(t, srv, name); sum.frames != len(frames) || sum.dups != 0 || !sum.inOrder {
				t.Errorf("stored %d of %d frames, %d duplicates, in order %v", sum.frames, len(frames), sum.dups, sum.inOrder)
			}
		})
	}
}
