package kvslocal

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// awsCLI is Debian's awscli v2 (local-aws.md §7.1); a pip-installed aws
// earlier on PATH is not what the references were captured with.
const awsCLI = "/usr/bin/aws"

// (d) awscli against the endpoint: the control plane and get-media.
func TestAWSCLI(t *testing.T) {
	testenv.Tool(t, awsCLI, "awscli") // a path: looked up as it is
	fx := loadFixture(t)
	_, url := start(t, t.TempDir())
	home := t.TempDir()
	run := func(args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsCLI, append([]string{"--endpoint-url", url, "--region", testRegion, "--output", "json"}, args...)...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_ACCESS_KEY_ID=" + testKey, "AWS_SECRET_ACCESS_KEY=" + testSecret,
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials")}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("aws %s timed out:\n%s", strings.Join(args, " "), out.String())
		}
		return out.String(), err
	}
	out, err := run("kinesisvideo", "create-stream", "--stream-name", "cli", "--data-retention-in-hours", "2", "--media-type", "video/h264")
	if err != nil || !strings.Contains(out, `"StreamARN": "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cli/`) {
		t.Fatalf("create-stream: %v\n%s", err, out)
	}
	out, err = run("kinesisvideo", "describe-stream", "--stream-name", "cli")
	var d struct{ StreamInfo map[string]any }
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.StreamInfo["Status"] != "ACTIVE" || d.StreamInfo["DataRetentionInHours"] != 2.0 {
		t.Fatalf("describe-stream: %v\n%s", err, out)
	}
	out, err = run("kinesisvideo", "list-streams")
	if err != nil || !strings.Contains(out, `"StreamName": "cli"`) {
		t.Fatalf("list-streams: %v\n%s", err, out)
	}
	out, err = run("kinesisvideo", "get-data-endpoint", "--stream-name", "cli", "--api-name", "GET_MEDIA")
	if err != nil || !strings.Contains(out, `"DataEndpoint": "`+url+`"`) {
		t.Fatalf("get-data-endpoint: %v\n%s", err, out)
	}
	out, err = run("kinesisvideo", "describe-stream", "--stream-name", "missing")
	if err == nil || !strings.Contains(out, "An error occurred (ResourceNotFoundException) when calling the DescribeStream operation: The requested stream is not found or not active.") {
		t.Fatalf("describe-stream of a missing stream: %v\n%s", err, out)
	}

	putFixture(t, url, "cli", fx)
	media := filepath.Join(t.TempDir(), "media.mkv")
	out, err = run("kinesis-video-media", "get-media", "--stream-name", "cli", "--start-selector", "StartSelectorType=EARLIEST", media)
	if err != nil || !strings.Contains(out, `"ContentType": "video/webm"`) {
		t.Fatalf("get-media: %v\n%s", err, out)
	}
	f, err := os.Open(media)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunks := readChunks(t, f)
	blocks := 0
	for _, c := range chunks {
		blocks += len(c.blocks)
	}
	if len(chunks) != 10 || blocks != 300 {
		t.Fatalf("get-media wrote %d chunks, %d blocks", len(chunks), blocks)
	}
}
