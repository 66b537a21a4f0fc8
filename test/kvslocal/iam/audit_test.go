package iam

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

// The audit log names the principal behind each call: an IAM user for a
// user's keys, and the assumed role with its session (the camera's thing
// or certificate) for credentials the IoT provider issued.
func TestAuditNamesThePrincipal(t *testing.T) {
	e := setup(t, WalkthroughOptions{}, nil)
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	srv, err := kvslocal.New(kvslocal.Config{Dir: t.TempDir(), Authorizer: e.iam, AuditLog: audit})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	admin := kvsClient(url, aws.Credentials{AccessKeyID: adminKey, SecretAccessKey: adminSecret})
	if _, err := admin.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam1"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	_, body, err := e.iotGet(t, e.devs["cam1"], "localhost", GuideRoleAlias, "cam1")
	if err != nil {
		t.Fatal(err)
	}
	m := body["credentials"].(map[string]any)
	key := m["accessKeyId"].(string)
	cam1 := kvsClient(url, aws.Credentials{AccessKeyID: key, SecretAccessKey: m["secretAccessKey"].(string), SessionToken: m["sessionToken"].(string)})
	if _, err := cam1.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam1")}); err != nil {
		t.Fatal(err)
	}
	srv.Close() // flush the log
	f, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type identity struct {
		Type, PrincipalID, ARN, AccessKeyID, UserName string
	}
	seen := map[string]identity{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev struct {
			EventName    string
			UserIdentity identity
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		seen[ev.EventName] = ev.UserIdentity
	}
	c, d := seen["CreateStream"], seen["DescribeStream"]
	if c.Type != "IAMUser" || c.ARN != "arn:aws:iam::123456789012:user/admin" || c.UserName != "admin" {
		t.Fatalf("CreateStream by %+v", c)
	}
	wantARN := "arn:aws:sts::123456789012:assumed-role/" + GuideRoleName + "/" + e.devs["cam1"].ID
	if d.Type != "AssumedRole" || d.ARN != wantARN || d.AccessKeyID != key || !strings.HasSuffix(d.PrincipalID, ":"+e.devs["cam1"].ID) {
		t.Fatalf("DescribeStream by %+v, want the assumed role %s", d, wantARN)
	}
}
