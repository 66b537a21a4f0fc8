package mkvstream

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/test/testenv"
)

// encryptRotating encrypts plain with a new epoch at every Cluster.
func encryptRotating(t *testing.T, plain []byte) []byte {
	t.Helper()
	keys(t)
	now := time.Unix(0, 0)
	enc, err := e2ee.NewEncryptor(e2ee.EncryptorConfig{Stream: "cam-1", SigningKey: device, Recipients: []*e2ee.PublicKey{alice.Public()},
		Now: func() time.Time { now = now.Add(2 * time.Hour); return now }})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Encrypt(&out, bytes.NewReader(plain), enc); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// A stream of ten epochs with its first fragment appended again, or served
// twice, never gives a frame twice, with or without -strict.
func TestReplayedFragmentsAfterTenEpochs(t *testing.T) {
	encd := encryptRotating(t, testenv.ReadFixture(t, "official-putmedia.mkv"))
	second := bytes.Index(encd[bytes.Index(encd, clusterID)+4:], clusterID) + bytes.Index(encd, clusterID) + 4
	firstFragment := encd[:second]
	for name, in := range map[string][]byte{
		"first fragment appended": append(bytes.Clone(encd), firstFragment...),
		"served twice":            append(bytes.Clone(encd), encd...),
	} {
		t.Run(name, func(t *testing.T) {
			rep, err := Decrypt(io.Discard, bytes.NewReader(in), cfg("cam-1", alice), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.BundlesAccepted < 10 || rep.Opened != 300 || rep.Counts[e2ee.ErrReplay] == 0 {
				t.Fatalf("%d bundles accepted, %d of %d frames opened, causes %v", rep.BundlesAccepted, rep.Opened, rep.Frames, rep.Counts)
			}
			_, err = Decrypt(io.Discard, bytes.NewReader(in), cfg("cam-1", alice), Options{Strict: true})
			if !errors.Is(err, e2ee.ErrReplay) {
				t.Fatalf("strict: %v", err)
			}
		})
	}
}

var clusterID = []byte{0x1f, 0x43, 0xb6, 0x75}
