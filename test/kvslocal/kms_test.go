package kvslocal

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
)

// filesContaining lists the files under dir holding needle.
func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, needle) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// getMediaFrames reads a stream from the start with GetMedia.
func getMediaFrames(t *testing.T, url, stream string) []*chunk {
	t.Helper()
	resp := signedPost(t, url, "/getMedia", map[string]any{"StreamName": stream, "StartSelector": map[string]string{"StartSelectorType": "EARLIEST"}})
	if resp.StatusCode != 200 {
		t.Fatalf("GetMedia: %d", resp.StatusCode)
	}
	return readChunks(t, resp.Body)
}

var keyARN = regexp.MustCompile(`^arn:aws:kms:us-west-2:123456789012:key/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// Nothing under Dir holds fragment plaintext or the master key; GetMedia
// still returns every frame byte for byte; without the master key the
// storage does not open.
func TestEncryptionAtRest(t *testing.T) {
	fx := loadFixture(t)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.CaptureBodies = false // captures are plaintext by design (a test aid)
	srv, url := startWith(t, cfg)
	createStream(t, url, "sealed", 2)
	putFixture(t, url, "sealed", fx)

	d, err := client(url, testKey, testSecret).DescribeStream(context.Background(), &kinesisvideo.DescribeStreamInput{StreamName: aws.String("sealed")})
	if err != nil || aws.ToString(d.StreamInfo.KmsKeyId) != "arn:aws:kms:us-west-2:123456789012:alias/aws/kinesisvideo" {
		t.Fatalf("KmsKeyId %q, %v", aws.ToString(d.StreamInfo.KmsKeyId), err)
	}
	def, err := srv.KMS().DescribeKey(DefaultKMSAlias)
	if err != nil || !keyARN.MatchString(def.ARN) || def.State != KeyEnabled || def.Versions != 1 {
		t.Fatalf("default key %+v, %v", def, err)
	}
	for _, i := range []int{0, 17, 150, 299} {
		p := fx.payloads[i]
		if got := filesContaining(t, dir, p[len(p)/2:len(p)/2+64]); len(got) != 0 {
			t.Fatalf("frame %d in plaintext on disk: %v", i, got)
		}
	}
	if got := filesContaining(t, dir, []byte("V_MPEG4/ISO/AVC")); len(got) != 0 {
		t.Fatalf("the track header in plaintext on disk: %v", got)
	}
	master, err := os.ReadFile(dir + ".master-key")
	if err != nil {
		t.Fatalf("the master key is not beside Dir: %v", err)
	}
	if got := filesContaining(t, dir, bytes.TrimSpace(master)); len(got) != 0 {
		t.Fatalf("the master key inside Dir: %v", got)
	}
	k := 0
	for _, c := range getMediaFrames(t, url, "sealed") {
		for _, b := range c.blocks {
			if !bytes.Equal(b, fx.payloads[k]) {
				t.Fatalf("frame %d differs after GetMedia", k)
			}
			k++
		}
	}
	if k != 300 {
		t.Fatalf("GetMedia returned %d frames", k)
	}
	// A changed byte in a sealed fragment is detected, not served.
	srv.Close()
	frags, _ := srv.store.fragments("sealed")
	m, _ := srv.store.get(streamRef{StreamName: "sealed"})
	path := filepath.Join(srv.store.streamDir(&m), frags[3].File)
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o644)
	srv2, _ := startWith(t, cfg)
	frags, _ = srv2.store.fragments("sealed")
	r, err := srv2.openFragment("sealed", frags[3])
	if err == nil {
		_, err = io.ReadAll(r)
		r.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "fails authentication") {
		t.Fatalf("a tampered fragment: %v", err)
	}
	srv2.Close()
	// Another master key opens nothing.
	cfg.MasterKeyFile = filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(cfg.MasterKeyFile, []byte(strings.Repeat("ab", 32)), 0o600)
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "does not open with the master key") {
		t.Fatalf("New with another master key: %v", err)
	}
	// Nor does a missing one get silently replaced.
	cfg.MasterKeyFile = filepath.Join(t.TempDir(), "absent.key")
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("New without the master key: %v", err)
	}
}

// A stream's own key (by alias) is honoured; rotation keeps old fragments
// readable; a disabled key gets 4501 acks and GetMedia error chunks, a
// missing key 4506.
func TestKMSKeyLifecycle(t *testing.T) {
	fx := loadFixture(t)
	dir := t.TempDir()
	srv, url := start(t, dir)
	kms := srv.KMS()
	key, err := kms.CreateKey("camera key")
	if err != nil || !keyARN.MatchString(key.ARN) {
		t.Fatalf("CreateKey %+v, %v", key, err)
	}
	if err := kms.CreateAlias("alias/cams", key.KeyID); err != nil {
		t.Fatal(err)
	}
	if err := kms.CreateAlias("alias/aws/mine", key.KeyID); err == nil {
		t.Fatal("an alias under alias/aws/ was accepted")
	}
	c := client(url, testKey, testSecret)
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("own"), DataRetentionInHours: aws.Int32(1),
		KmsKeyId: aws.String("alias/cams")}); err != nil {
		t.Fatal(err)
	}
	d, _ := c.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("own")})
	if aws.ToString(d.StreamInfo.KmsKeyId) != "alias/cams" {
		t.Fatalf("KmsKeyId %q", aws.ToString(d.StreamInfo.KmsKeyId))
	}
	putAll(t, url, putOptions{stream: "own"}, body(fx, fx.cluster(0), fx.data[fx.eofr:]), "PERSISTED", 1)
	if err := kms.RotateKey(key.ARN); err != nil {
		t.Fatal(err)
	}
	putAll(t, url, putOptions{stream: "own"}, body(fx, fx.cluster(1), fx.data[fx.eofr:]), "PERSISTED", 1)
	frags, _ := srv.store.fragments("own")
	if len(frags) != 2 || frags[0].DataKey.KeyID != key.KeyID || frags[0].DataKey.Version != 1 || frags[1].DataKey.Version != 2 {
		t.Fatalf("data keys %+v %+v", frags[0].DataKey, frags[1].DataKey)
	}
	if got := getMediaFrames(t, url, "own"); len(got) != 2 || !bytes.Equal(got[0].blocks[0], fx.payloads[0]) || !bytes.Equal(got[1].blocks[0], fx.payloads[30]) {
		t.Fatalf("after rotation GetMedia gave %d chunks", len(got))
	}

	if err := kms.DisableKey("alias/cams"); err != nil {
		t.Fatal(err)
	}
	acks := putAll(t, url, putOptions{stream: "own"}, body(fx, fx.cluster(2)), "", 0)
	if got := ackTypes(acks); got != "ERROR/4501" || !strings.Contains(acks[0].raw, `"ErrorCode":"KMS_KEY_DISABLED"`) || acks[0].FragmentTimecode != fx.timecodes[2] {
		t.Fatalf("PutMedia under a disabled key: %s %v", got, acks)
	}
	if f, _ := srv.store.fragments("own"); len(f) != 2 {
		t.Fatalf("%d fragments after the refused one", len(f))
	}
	got := getMediaFrames(t, url, "own")
	if len(got) != 1 || got[0].tags["AWS_KINESISVIDEO_ERROR_ID"] != "4501" || got[0].tags["AWS_KINESISVIDEO_ERROR_CODE"] != "KMS_KEY_DISABLED" ||
		got[0].tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"] != frags[0].Number || len(got[0].blocks) != 0 {
		t.Fatalf("GetMedia under a disabled key: %d chunks %v", len(got), got)
	}
	if err := kms.EnableKey(key.KeyID); err != nil {
		t.Fatal(err)
	}
	if got := getMediaFrames(t, url, "own"); len(got) != 2 {
		t.Fatalf("after EnableKey: %d chunks", len(got))
	}
	if err := kms.ScheduleKeyDeletion(key.KeyID); err != nil {
		t.Fatal(err)
	}
	if acks := putAll(t, url, putOptions{stream: "own"}, body(fx, fx.cluster(2)), "", 0); ackTypes(acks) != "ERROR/4505" {
		t.Fatalf("pending deletion: %v", acks)
	}
	// A key that does not exist.
	if _, err := c.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("nokey"), DataRetentionInHours: aws.Int32(1),
		KmsKeyId: aws.String("arn:aws:kms:us-west-2:123456789012:key/00000000-0000-4000-8000-000000000000")}); err != nil {
		t.Fatal(err)
	}
	if acks := putAll(t, url, putOptions{stream: "nokey"}, body(fx, fx.cluster(0)), "", 0); ackTypes(acks) != "ERROR/4506" {
		t.Fatalf("missing key: %v", acks)
	}
	// The key store survives a restart (the master key beside Dir).
	srv.Close()
	srv2, _ := start(t, dir)
	ki, err := srv2.KMS().DescribeKey("alias/cams")
	if err != nil || ki.Versions != 2 || ki.State != KeyPendingDeletion || strings.Join(ki.Aliases, ",") != "alias/cams" {
		t.Fatalf("after a restart: %+v %v", ki, err)
	}
	raw, _ := json.Marshal(ki)
	if bytes.Contains(raw, []byte("material")) {
		t.Fatalf("KeyInfo exposes key material: %s", raw)
	}
}
