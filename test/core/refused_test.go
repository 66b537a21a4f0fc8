package core

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// A stream whose KMS key does not exist gets every fragment refused with
// 4506 KMS_KEY_NOT_FOUND: after sink.MaxRefusedRun of them in a row the
// stream fails, naming the error and the fragments lost, instead of going
// on storing nothing.
func TestRefusedRunEndsTheStream(t *testing.T) {
	cpd, frames := officialFrames(t)
	srv, url := startEndpoint(t)
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: url, Region: "us-west-2",
		Credentials: aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(accessKey, secretKey, ""))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.CreateStream(context.Background(), kvs.CreateStreamInput{Name: "nokey", RetentionHours: 2, MediaType: "video/h264",
		KMSKeyID: "arn:aws:kms:us-west-2:123456789012:key/00000000-0000-4000-8000-000000000000"}); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	cfg := config(url, "nokey")
	cfg.OnEvent = ev.add
	err = stream(t, cfg, cpd, frames)
	var re *sink.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, sink.ErrFragmentsRefused) || !re.Run || re.ErrorID != 4506 || re.ErrorName != "KMS_KEY_NOT_FOUND" ||
		re.Fragments != sink.MaxRefusedRun || re.Frames != sink.MaxRefusedRun*30 {
		t.Fatalf("stream under a missing key: %v (%+v)", err, re)
	}
	if n := len(ev.of(sink.EventStreamError)); n != sink.MaxRefusedRun {
		t.Fatalf("%d ERROR events, want %d", n, sink.MaxRefusedRun)
	}
	if sum := summarise(t, srv, "nokey"); sum.frames != 0 {
		t.Fatalf("%d frames stored", sum.frames)
	}
	t.Log(err)
}
