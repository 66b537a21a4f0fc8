package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/sink"
)

// The case: a stream created with a KMS key that does not exist.
// Every fragment is refused with 4506; gst-launch must not exit 0 with
// nothing stored: the element errors, naming the error and the loss.
func TestRefusedFragmentsAreAnError(t *testing.T) {
	ep := startEndpoint(t)
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: ep.url, Region: "us-west-2",
		Credentials: aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.CreateStream(context.Background(), kvs.CreateStreamInput{Name: "nokey", RetentionHours: 2, MediaType: "video/h264",
		KMSKeyID: "arn:aws:kms:us-west-2:123456789012:key/00000000-0000-4000-8000-000000000000"}); err != nil {
		t.Fatal(err)
	}
	// 300 frames, key-int 30: ten fragments, more than MaxRefusedRun.
	r := launch(t, ep, 90*time.Second, "videotestsrc num-buffers=300 ! video/x-raw,framerate=30/1 ! x264enc key-int-max=30 ! h264parse ! "+kvssink("nokey"))
	if r.rc == 0 {
		t.Fatalf("gst-launch exited 0 with every fragment refused:\n%s", tail([]byte(r.output)))
	}
	for _, want := range []string{"KMS_KEY_NOT_FOUND (4506)", "fragments in a row refused", "frame(s) lost"} {
		if !strings.Contains(r.output, want) {
			t.Errorf("the element error lacks %q:\n%s", want, tail([]byte(r.output)))
		}
	}
	if n := strings.Count(r.output, "KMS_KEY_NOT_FOUND"); n < sink.MaxRefusedRun {
		t.Errorf("%d KMS_KEY_NOT_FOUND reports, want at least %d", n, sink.MaxRefusedRun)
	}
}
