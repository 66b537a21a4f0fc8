package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/kvslocal/iam"
)

// iotEndpoint is the developer guide's IoT walkthrough for cam1 and cam2
// (both streams exist), behind a KVS endpoint that evaluates the role's
// policy. The test key of the harness is the account's administrator.
func iotEndpoint(t *testing.T) (*endpoint, string, map[string]iam.DeviceFiles) {
	t.Helper()
	dir := t.TempDir()
	admin := &iam.User{Name: "admin", AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey, Policies: []iam.Policy{iam.AdminPolicy()}}
	ca, f, devs, err := iam.Walkthrough(dir, []string{"cam1", "cam2"}, iam.WalkthroughOptions{Admin: admin})
	if err != nil {
		t.Fatal(err)
	}
	az, err := iam.New(f, iam.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { az.Close() })
	leaf, _ := ca.Issue(iam.IssueOptions{CommonName: "localhost", Hosts: []string{"localhost"}})
	cert, _ := leaf.TLSCertificate()
	iotEP, err := az.StartIoT("127.0.0.1:0", "localhost", cert)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := kvslocal.New(kvslocal.Config{Dir: t.TempDir(), Authorizer: az, CaptureBodies: true})
	if err != nil {
		t.Fatal(err)
	}
	url, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctl, _ := kvs.NewControl(kvs.ControlConfig{Endpoint: url, Region: "us-west-2",
		Credentials: aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""))})
	for _, s := range []string{"cam1", "cam2"} {
		if _, err := ctl.CreateStream(context.Background(), kvs.CreateStreamInput{Name: s, RetentionHours: 2, MediaType: "video/h264"}); err != nil {
			t.Fatal(err)
		}
	}
	return &endpoint{srv: srv, url: url, dir: dir}, iotEP, devs
}

func iotProperty(endpoint, thing string, d iam.DeviceFiles) string {
	s := "iot-certificate=iot-certificate,endpoint=" + endpoint + ",cert-path=" + d.CertPath + ",key-path=" + d.KeyPath +
		",ca-path=" + d.CAPath + ",role-aliases=" + iam.GuideRoleAlias
	if thing != "" {
		s += ",iot-thing-name=" + thing
	}
	return s
}

// gst-launch with iot-certificate, as the guide writes it: camera 1 streams
// to its own stream (and says which certificate it presents); pointed at
// camera 2's stream it fails at once with access denied.
func TestIoTCertificatePipeline(t *testing.T) {
	ep, iotEP, devs := iotEndpoint(t)
	r := launch(t, ep, 60*time.Second, "-m videotestsrc num-buffers=30 ! x264enc ! h264parse ! "+kvssink("cam1", iotProperty(iotEP, "", devs["cam1"])))
	if r.rc != 0 {
		t.Fatalf("gst-launch exited %d:\n%s", r.rc, r.output)
	}
	if !strings.Contains(r.output, "kvs-iot-certificate, certificate-id=(string)"+devs["cam1"].ID) {
		t.Errorf("no kvs-iot-certificate message with the certificate id in:\n%s", r.output)
	}
	validate(t, ep.capture(t, "cam1", 1)[0], 30)

	r = launch(t, ep, 60*time.Second, "videotestsrc num-buffers=30 ! x264enc ! h264parse ! "+kvssink("cam2", iotProperty(iotEP, "cam1", devs["cam1"])))
	if r.rc == 0 || !strings.Contains(r.output, "AccessDeniedException") || !strings.Contains(r.output, "not authorized to perform: kinesisvideo:DescribeStream") {
		t.Fatalf("camera 1 on camera 2's stream: rc %d:\n%s", r.rc, r.output)
	}
	if r.duration > 10*time.Second {
		t.Fatalf("access denied took %v", r.duration)
	}
	if paths, _ := ep.srv.Captures("cam2"); len(paths) != 0 {
		t.Fatalf("%d PutMedia bodies reached cam2", len(paths))
	}
	// A numeric field without (string) is rejected as the official element does.
	r = launch(t, ep, 30*time.Second, "videotestsrc num-buffers=3 ! x264enc ! h264parse ! "+kvssink("cam1", iotProperty(iotEP, "", devs["cam1"])+",connection-timeout=5"))
	if r.rc == 0 || !strings.Contains(r.output, "connection-timeout=(string)5") {
		t.Fatalf("untyped timeout: rc %d:\n%s", r.rc, r.output)
	}
}
