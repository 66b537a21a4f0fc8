package core

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal/iam"
)

// Credentials that expire several times during one live stream are
// refreshed before they expire and each refresh moves the PutMedia
// connection onto them: one planned rotation per refresh, no connection
// lost or refused (the endpoint rejects expired credentials), no frame
// lost, and no retry loop. The lifetimes are scaled down from AWS's 15
// minutes to 8 s: refresh window 3 s, rotation 2 s before expiry.
func TestIoTCredentialRefreshRotatesTheConnection(t *testing.T) {
	cpd, frames := officialFrames(t)
	w := startIoTWorld(t, iam.WalkthroughOptions{CredentialDuration: "8s"}, nil, []string{"cam1"}, "cam1")
	dev := w.devs["cam1"]
	res, err := credentials.Resolve(context.Background(), credentials.Sources{IoT: &credentials.IoTCertificate{
		Endpoint: w.iotEP, CertPath: dev.CertPath, KeyPath: dev.KeyPath, CAPath: dev.CAPath,
		RoleAlias: iam.GuideRoleAlias, ThingName: "cam1"}}, credentials.Options{ExpiryWindow: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := iotConfig(t, w.settings("cam1", "", dev))
	cfg.Credentials, cfg.CredentialGrace = res.Provider, 2*time.Second
	var mu sync.Mutex
	var connected, lost int
	cfg.OnEvent = func(ev sink.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case sink.EventConnected:
			connected++
		case sink.EventConnectionLost, sink.EventStreamError:
			lost++
			t.Logf("unexpected: %v", ev)
		}
	}
	s := startSink(t, cfg, cpd)
	issued0 := w.iam.Issued()
	for i, f := range frames { // 300 frames over 20 s, as a live camera
		if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		time.Sleep(66 * time.Millisecond) // pacing the source, not waiting for a result
	}
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := summarise(t, w.kvs, "cam1")
	issued := w.iam.Issued() - issued0
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d fragments, %d frames stored; %d connections; %d credential sets issued during the stream", sum.total, sum.allFrames, connected, issued)
	if sum.allFrames != 300 || sum.total != 10 {
		t.Fatalf("%d frames in %d fragments stored, want 300 in 10 (no loss, no duplicate)", sum.allFrames, sum.total)
	}
	if lost != 0 {
		t.Fatalf("%d connections lost or errors: rotation must come before expiry", lost)
	}
	// 20 s of 8 s credentials renewed 2 s before expiry: a new set every
	// ~6 s, each on its own new connection.
	if issued < 2 || issued > 4 || connected != issued+1 {
		t.Fatalf("%d credential sets issued, %d connections: want one rotation per refresh, 2 to 4 of them", issued, connected)
	}
}
