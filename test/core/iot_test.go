package core

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/pkg/sink"
	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/kvslocal/iam"
)

// iotWorld is the developer guide's IoT walkthrough on loopback: the IoT
// credentials provider, and a KVS endpoint that evaluates the role's policy.
type iotWorld struct {
	iam   *iam.Server
	kvs   *kvslocal.Server
	url   string
	iotEP string
	devs  map[string]iam.DeviceFiles
}

// startIoTWorld sets up the walkthrough for things and creates streams. A
// non-nil rolePolicy replaces the policy of the guide's role.
func startIoTWorld(t *testing.T, o iam.WalkthroughOptions, rolePolicy *iam.Policy, things []string, streams ...string) *iotWorld {
	t.Helper()
	dir := t.TempDir()
	o.Admin = &iam.User{Name: "admin", AccessKeyID: accessKey, SecretAccessKey: secretKey, Policies: []iam.Policy{iam.AdminPolicy()}}
	ca, f, devs, err := iam.Walkthrough(dir, things, o)
	if err != nil {
		t.Fatal(err)
	}
	if rolePolicy != nil {
		f.Roles[0].Policies = []iam.Policy{*rolePolicy}
	}
	w := &iotWorld{devs: devs}
	if w.iam, err = iam.New(f, iam.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.iam.Close() })
	leaf, err := ca.Issue(iam.IssueOptions{CommonName: "localhost", Hosts: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := leaf.TLSCertificate()
	if w.iotEP, err = w.iam.StartIoT("127.0.0.1:0", "localhost", cert); err != nil {
		t.Fatal(err)
	}
	if w.kvs, err = kvslocal.New(kvslocal.Config{Dir: t.TempDir(), Authorizer: w.iam}); err != nil {
		t.Fatal(err)
	}
	if w.url, err = w.kvs.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.kvs.Close() })
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: w.url, Region: "us-west-2",
		Credentials: aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(accessKey, secretKey, ""))})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range streams {
		if _, err := ctl.CreateStream(context.Background(), kvs.CreateStreamInput{Name: s, RetentionHours: 2, MediaType: "video/h264"}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// settings are the element's properties for a camera with a device's
// certificate, as a user writes them.
func (w *iotWorld) settings(stream, thing string, dev iam.DeviceFiles) sink.Settings {
	st := sink.DefaultSettings()
	st.StreamName = stream
	region, url := "us-west-2", w.url
	st.AWSRegion, st.ControlPlaneURI = &region, &url
	st.AllowCreateStream = false
	fields := map[string]sink.TypedValue{
		"endpoint": {Type: "gchararray", Value: w.iotEP}, "cert-path": {Type: "gchararray", Value: dev.CertPath},
		"key-path": {Type: "gchararray", Value: dev.KeyPath}, "ca-path": {Type: "gchararray", Value: dev.CAPath},
		"role-aliases": {Type: "gchararray", Value: iam.GuideRoleAlias},
	}
	order := []string{"endpoint", "cert-path", "key-path", "ca-path", "role-aliases"}
	if thing != "" {
		fields["iot-thing-name"] = sink.TypedValue{Type: "gchararray", Value: thing}
		order = append(order, "iot-thing-name")
	}
	st.IoTCertificate = &sink.Structure{Name: "iot-certificate", Fields: fields, Order: order}
	return st
}

// openSettings resolves st as the element's start does: Config (pure), then
// Open (files, the credentials provider).
func openSettings(st sink.Settings) (sink.Config, error) {
	cfg, err := st.Config(os.Getenv)
	if err != nil {
		return cfg, err
	}
	return cfg.Open(context.Background())
}

func iotConfig(t *testing.T, st sink.Settings) sink.Config {
	t.Helper()
	cfg, err := st.Config(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnectionTimeout, cfg.CompletionTimeout, cfg.StopStreamTimeout = 2*time.Second, 5*time.Second, 20*time.Second
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if cfg, err = cfg.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Least privilege, as the guide sets it up: with the role's policy on
// stream/${credentials-iot:ThingName}/*, camera 1 streams to its own
// stream, and the same camera pointed at camera 2's stream fails at start
// with access denied, without retrying.
func TestIoTCameraStreamsOnlyToItsOwnStream(t *testing.T) {
	cpd, frames := officialFrames(t)
	w := startIoTWorld(t, iam.WalkthroughOptions{}, nil, []string{"cam1", "cam2"}, "cam1", "cam2")
	cfg := iotConfig(t, w.settings("cam1", "", w.devs["cam1"])) // thing name = stream name
	if cfg.CertificateID != w.devs["cam1"].ID || !strings.Contains(cfg.CredSource, "iot-certificate") {
		t.Fatalf("certificate id %q, source %q", cfg.CertificateID, cfg.CredSource)
	}
	if err := stream(t, cfg, cpd, frames[:90]); err != nil {
		t.Fatal(err)
	}
	if frags, _ := w.kvs.Fragments("cam1"); len(frags) != 3 {
		t.Fatalf("stored %d fragments, want 3", len(frags))
	}

	cfg = iotConfig(t, w.settings("cam2", "cam1", w.devs["cam1"]))
	s, err := sink.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	err = s.Start(context.Background())
	if !errors.Is(err, kvs.ErrAccessDenied) || !strings.Contains(err.Error(), "not authorized to perform: kinesisvideo:DescribeStream") {
		t.Fatalf("Start = %v, want access denied", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("access denied took %v: retried?", d)
	}
	t.Logf("camera 1 on camera 2's stream: %v", err)

	// Camera 1's certificate presented as thing cam2, which it is not
	// attached to: the credentials provider refuses the thing name ("Invalid
	// thing name passed"), so the element already fails in Open, at start.
	st := w.settings("cam1", "", w.devs["cam1"])
	st.IoTCertificate.Fields["iot-thing-name"] = sink.TypedValue{Type: "gchararray", Value: "cam2"}
	if _, err := openSettings(st); err == nil || !strings.Contains(err.Error(), "Invalid thing name passed") {
		t.Fatalf("camera 1's certificate as thing cam2: %v", err)
	}
}

// The guide's second variant: streams named after the certificate id, with
// the policy on stream/${credentials-iot:AwsCertificateId}/*.
func TestIoTStreamNamedAfterCertificate(t *testing.T) {
	cpd, frames := officialFrames(t)
	w := startIoTWorld(t, iam.WalkthroughOptions{StreamVariable: iam.VarCertificateID}, nil, []string{"cam1", "cam2"})
	id := w.devs["cam1"].ID
	ctl, _ := kvs.NewControl(kvs.ControlConfig{Endpoint: w.url, Region: "us-west-2",
		Credentials: aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(accessKey, secretKey, ""))})
	for _, s := range []string{id, w.devs["cam2"].ID} {
		if _, err := ctl.CreateStream(context.Background(), kvs.CreateStreamInput{Name: s, RetentionHours: 2, MediaType: "video/h264"}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := iotConfig(t, w.settings(id, "cam1", w.devs["cam1"]))
	if cfg.CertificateID != id {
		t.Fatalf("certificate id %s, want %s", cfg.CertificateID, id)
	}
	if err := stream(t, cfg, cpd, frames[:60]); err != nil {
		t.Fatal(err)
	}
	cfg = iotConfig(t, w.settings(w.devs["cam2"].ID, "cam1", w.devs["cam1"]))
	s, _ := sink.New(cfg)
	defer s.Close()
	if err := s.Start(context.Background()); !errors.Is(err, kvs.ErrAccessDenied) {
		t.Fatalf("another certificate's stream: %v", err)
	}
}

// Credentials that live only a little longer than the refresh window are
// replaced several times during one stream, which reconnects (the endpoint
// drops PutMedia connections after 650 KB during the first two thirds): every frame is
// stored, nothing fails, and the core does not spin.
func TestIoTCredentialsRotateDuringStream(t *testing.T) {
	cpd, frames := officialFrames(t)
	w := startIoTWorld(t, iam.WalkthroughOptions{CredentialDuration: "40s"}, nil, []string{"cam1"}, "cam1")
	cfg := iotConfig(t, w.settings("cam1", "", w.devs["cam1"]))
	var events atomic.Int32
	cfg.OnEvent = func(sink.Event) { events.Add(1) }
	w.kvs.SetFaults(kvslocal.Faults{DropAfterBytes: 650 << 10})
	s := startSink(t, cfg, cpd)
	issued0 := w.iam.Issued()
	// 300 frames over ~9 s: credentials valid for 2 s in the cache
	// (40 s - ExpiryWindow) are fetched again several times.
	for i, f := range frames {
		if err := s.Put(context.Background(), sink.Frame{PTS: f.pts, DTS: sink.NoTime, Duration: sink.NoTime, Keyframe: f.key, Data: f.data}); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		time.Sleep(30 * time.Millisecond) // pacing a live source, not a wait for a result
		if i == 200 {
			w.kvs.SetFaults(kvslocal.Faults{}) // the last connection ends the stream cleanly
		}
	}
	if err := s.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	sum := summarise(t, w.kvs, "cam1")
	issued := w.iam.Issued() - issued0
	t.Logf("%d fragments stored (%d distinct), %d credential sets issued during the stream, %d events", sum.total, sum.distinct, issued, events.Load())
	if sum.frames != 300 || sum.distinct != 10 {
		t.Fatalf("%d frames in %d distinct fragments stored, want 300 in 10", sum.frames, sum.distinct)
	}
	if issued < 2 {
		t.Fatalf("only %d credential sets issued during the stream: nothing was refreshed", issued)
	}
	if issued > 30 {
		t.Fatalf("%d credential sets issued: the provider is asked in a loop", issued)
	}
}

// A role that may describe the stream but not PutMedia: the upload is denied
// by the endpoint the way KVS denies it (AccessDeniedException before any
// acknowledgement) and the core stops at once with access denied instead of
// reconnecting.
func TestIoTPutMediaDenied(t *testing.T) {
	cpd, frames := officialFrames(t)
	// The guide's policy with DescribeStream and GetDataEndpoint only.
	p := iam.GuideRolePolicy(iam.VarThingName)
	p.Statement[0].Action = append(p.Statement[0].Action[:1:1], "kinesisvideo:GetDataEndpoint")
	w := startIoTWorld(t, iam.WalkthroughOptions{}, &p, []string{"cam1"}, "cam1")
	cfg := iotConfig(t, w.settings("cam1", "", w.devs["cam1"]))
	var lost atomic.Int32
	cfg.OnEvent = func(e sink.Event) {
		if e.Kind == sink.EventConnectionLost {
			lost.Add(1)
		}
	}
	start := time.Now()
	err := stream(t, cfg, cpd, frames[:60])
	if !errors.Is(err, kvs.ErrAccessDenied) || !strings.Contains(err.Error(), "kinesisvideo:PutMedia") {
		t.Fatalf("stream = %v, want access denied on PutMedia", err)
	}
	if d := time.Since(start); d > 3*time.Second || lost.Load() > 0 {
		t.Fatalf("took %v with %d reconnects: access denied must not be retried", d, lost.Load())
	}
	if frags, _ := w.kvs.Fragments("cam1"); len(frags) != 0 {
		t.Fatalf("%d fragments stored", len(frags))
	}
}

// A certificate the IoT endpoint does not know fails the TLS handshake; the
// element's error says which file to check.
func TestIoTUnregisteredCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, f, _, err := iam.Walkthrough(dir, []string{"cam1"}, iam.WalkthroughOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := ca.WriteDevice(dir, "stranger", iam.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	az, err := iam.New(f, iam.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer az.Close()
	leaf, _ := ca.Issue(iam.IssueOptions{CommonName: "localhost", Hosts: []string{"localhost"}})
	cert, _ := leaf.TLSCertificate()
	w := &iotWorld{url: "http://127.0.0.1:9"}
	if w.iotEP, err = az.StartIoT("127.0.0.1:0", "localhost", cert); err != nil {
		t.Fatal(err)
	}
	_, err = openSettings(w.settings("cam1", "", stranger))
	if !errors.Is(err, sink.ErrSettings) || !strings.Contains(err.Error(), "refused the TLS handshake") || !strings.Contains(err.Error(), stranger.CertPath) {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}
