package pipeline

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// The security model's customer-managed key, end to end: a key made with
// aws kms create-key, a stream created with --kms-key-id, a live camera
// streaming under it; disabling the key with awscli while it streams makes
// the service answer KMS_KEY_DISABLED (4501) ERROR acks, and the element
// ends with the error and the fragments lost instead of exiting 0.
func TestKMSKeyDisabledWhileStreaming(t *testing.T) {
	ep := iamEndpoint(t)
	dir := t.TempDir()
	out, code := awsAs(t, ep, dir, nil, "kms", "create-key", "--description", "camera", "--query", "KeyMetadata.KeyId", "--output", "text")
	if code != "" {
		t.Fatal(out)
	}
	keyID := strings.TrimSpace(out)
	if out, code := awsAs(t, ep, dir, nil, "kms", "create-alias", "--alias-name", "alias/camera", "--target-key-id", keyID); code != "" {
		t.Fatal(out)
	}
	if out, code := awsAs(t, ep, dir, nil, "kinesisvideo", "create-stream", "--stream-name", "cmk", "--data-retention-in-hours", "2", "--kms-key-id", "alias/camera"); code != "" {
		t.Fatal(out)
	}
	plugin := testenv.PluginDir(t)
	gst := testenv.Tool(t, "gst-launch-1.0", "gstreamer1.0-tools")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	// A live camera: 60 s at most, fragments of 1 s.
	cmd := exec.CommandContext(ctx, gst, append([]string{"-e"}, strings.Fields("videotestsrc is-live=true num-buffers=1800 ! video/x-raw,framerate=30/1 ! "+
		"x264enc tune=zerolatency key-int-max=30 ! h264parse ! "+kvssink("cmk"))...)...)
	cmd.Env = gstEnv(plugin, ep)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Wait for fragments stored under the key, then disable it.
	for {
		frags, err := ep.srv.Fragments("cmk")
		if err == nil && len(frags) >= 2 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("gst-launch ended before storing two fragments: %v\n%s", err, tail(buf.Bytes()))
		case <-time.After(200 * time.Millisecond):
		}
	}
	if out, code := awsAs(t, ep, dir, nil, "kms", "disable-key", "--key-id", "alias/camera"); code != "" {
		t.Fatal(out)
	}
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatalf("gst-launch went on streaming under a disabled key:\n%s", tail(buf.Bytes()))
	}
	output := buf.String()
	if err == nil {
		t.Fatalf("gst-launch exited 0 under a disabled key:\n%s", tail(buf.Bytes()))
	}
	for _, want := range []string{"Kinesis Video Streams error 4501 KMS_KEY_DISABLED", "fragments in a row refused with non-retriable errors, the last KMS_KEY_DISABLED (4501)"} {
		if !strings.Contains(output, want) {
			t.Errorf("no %q in:\n%s", want, tail(buf.Bytes()))
		}
	}
	// What was stored before stays readable once the key is enabled again.
	if out, code := awsAs(t, ep, dir, nil, "kms", "enable-key", "--key-id", keyID); code != "" {
		t.Fatal(out)
	}
	if out, code := awsAs(t, ep, dir, nil, "kinesis-video-media", "get-media", "--stream-name", "cmk", "--start-selector", "StartSelectorType=EARLIEST", "cmk.mkv"); code != "" {
		t.Fatalf("get-media after enable-key: %s", out)
	}
}
