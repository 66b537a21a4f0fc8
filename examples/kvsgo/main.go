// Command kvsgo is the consumer side of kvsgo: it reads a Kinesis video
// stream back (GetMedia) into a single playable Matroska file, decrypting
// an end-to-end encrypted stream on the way when given -key and -device.
//
//	kvsgo get -stream NAME [-start EARLIEST|NOW|FRAGMENT_NUMBER|PRODUCER_TIMESTAMP|SERVER_TIMESTAMP|CONTINUATION_TOKEN]
//	          [-after N] [-timestamp RFC3339] [-token T] [-key FILE [-key FILE] -device ENTRY|FILE [-strict] [-state FILE]
//	          [-accept-v1]] [-raw] [-ca-cert FILE|DIR] [-o out.mkv]
//	kvsgo keygen -kind x25519|xwing|ed25519 -o FILE [-pub PUBFILE]   (writes FILE, mode 0600, and FILE.pub or PUBFILE)
//	kvsgo decrypt -stream NAME -device ENTRY|FILE -key FILE [-key FILE] [-i in.mkv] [-o out.mkv] [-raw] [-strict] [-state FILE] [-accept-v1]
//	kvsgo encrypt -stream NAME -signing-key FILE -recipients ENTRY|FILE [-suite S] [-i in.mkv] [-o out.mkv]
//
// keygen, decrypt and encrypt handle end-to-end encrypted streams
// (pkg/e2ee): "get -key" decrypts as it downloads; decrypt takes what
// "get -raw" wrote or a PutMedia body.
//
// The endpoint, region and credentials come from the same places as the
// element's: AWS_ENDPOINT_URL_KINESIS_VIDEO, CONTROL_PLANE_URI or
// AWS_ENDPOINT_URL; AWS_REGION; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; the
// CA certificates of a TLS endpoint from -ca-cert, KVSSINK_CA_CERT_PATH or
// AWS_CA_BUNDLE.
//
// get never writes a file players would mishandle: a range without
// fragments writes no file, an encrypted stream read without -key and a
// fragment whose timestamps go back stop it with an error (the latter
// keeping what came before; -raw keeps every fragment as its own segment).
// Its exit status is then 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/kvsgo/kvsgo/pkg/credentials"
	"github.com/kvsgo/kvsgo/pkg/e2ee"
	"github.com/kvsgo/kvsgo/pkg/e2ee/mkvstream"
	"github.com/kvsgo/kvsgo/pkg/httpx"
	"github.com/kvsgo/kvsgo/pkg/kvs"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch os.Args[1] {
	case "get":
		err = get(ctx, os.Args[2:], os.Stderr)
	case "keygen":
		err = keygen(os.Args[2:], os.Stdout)
	case "decrypt":
		err = decrypt(os.Args[2:], os.Stderr)
	case "encrypt":
		err = encrypt(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvsgo:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kvsgo get -stream NAME [-start EARLIEST] [-key FILE -device ENTRY|FILE] [-o out.mkv]")
	fmt.Fprintln(os.Stderr, "       kvsgo keygen -kind x25519|xwing|ed25519 -o FILE [-pub PUBFILE]")
	fmt.Fprintln(os.Stderr, "       kvsgo decrypt -stream NAME -device ENTRY|FILE -key FILE [-i in.mkv] [-o out.mkv]")
	fmt.Fprintln(os.Stderr, "       kvsgo encrypt -stream NAME -signing-key FILE -recipients ENTRY|FILE [-i in.mkv] [-o out.mkv]")
	os.Exit(2)
}

func get(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	stream := fs.String("stream", "", "stream name (required)")
	start := fs.String("start", "EARLIEST", "start selector type")
	after := fs.String("after", "", "fragment number, for FRAGMENT_NUMBER")
	ts := fs.String("timestamp", "", "RFC 3339 time, for PRODUCER_TIMESTAMP and SERVER_TIMESTAMP")
	token := fs.String("token", "", "continuation token, for CONTINUATION_TOKEN")
	out := fs.String("o", "out.mkv", "output file")
	endpoint := fs.String("endpoint", "", "control-plane URL (default: from the environment)")
	region := fs.String("region", "", "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, us-west-2)")
	raw := fs.Bool("raw", false, "write one segment per fragment, as GetMedia sends them (with -key: decrypted, not joined)")
	caCert := fs.String("ca-cert", "", "PEM file or directory of the CA certificates to trust for TLS (default: "+caEnv+", else AWS_CA_BUNDLE, else the system's)")
	var keys listFlag
	fs.Var(&keys, "key", "recipient private key file of an end-to-end encrypted stream (repeatable; needs -device)")
	devices := fs.String("device", "", "pinned device public keys of an encrypted stream: ed25519:BASE64 entries or files of them, comma-separated (needs -key)")
	strict := fs.Bool("strict", false, "with -key: fail on the first frame or bundle that does not decrypt instead of dropping it")
	state := fs.String("state", "", "with -key: "+stateUsage)
	acceptV1 := fs.Bool("accept-v1", false, "with -key: "+acceptV1Usage)
	fs.Parse(args)
	if *stream == "" {
		return errors.New("get: -stream is required")
	}
	if (len(keys) > 0) != (*devices != "") {
		return errors.New("get: -key and -device go together: the recipient private key(s) and the camera's public key")
	}
	var dcfg *e2ee.DecryptorConfig
	if len(keys) > 0 {
		c, err := decryptConfig(*stream, *devices, keys)
		if err != nil {
			return err
		}
		if err := loadState(*state, &c); err != nil {
			return err
		}
		c.AcceptV1Bundles = *acceptV1
		dcfg = &c
	}
	rgn, err := kvs.ResolveRegion(*region, *region != "", os.Getenv)
	if err != nil {
		return err
	}
	ep, _, err := kvs.ResolveEndpoint(*endpoint, rgn, os.Getenv)
	if err != nil {
		return err
	}
	nc, err := netClient(*caCert, os.Getenv)
	if err != nil {
		return err
	}
	hc := nc.HTTP()
	cr, err := credentials.Resolve(ctx, credentials.Sources{}, credentials.Options{Region: rgn, Net: nc})
	if errors.Is(err, credentials.ErrNoCredentials) {
		return fmt.Errorf("get: %w; kvsgo reads %s", err, credentials.EnvironmentHint)
	}
	if err != nil {
		return err
	}
	creds := cr.Provider
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: ep, Region: rgn, Credentials: creds, HTTPClient: hc})
	if err != nil {
		return err
	}
	dataEP, err := ctl.GetDataEndpoint(ctx, *stream, "GET_MEDIA")
	if err != nil {
		return err
	}
	sel := kvs.StartSelector{Type: *start, AfterFragmentNumber: *after, ContinuationToken: *token}
	if *ts != "" {
		if sel.StartTimestamp, err = time.Parse(time.RFC3339Nano, *ts); err != nil {
			return fmt.Errorf("get: -timestamp: %v", err)
		}
	}
	body, err := kvs.GetMedia(ctx, kvs.GetMediaConfig{Endpoint: dataEP, StreamName: *stream, Region: rgn, Credentials: creds, Start: sel, HTTPClient: hc})
	if err != nil {
		return err
	}
	defer body.Close()
	f := &lazyFile{path: *out}
	tty := false
	if sf, ok := stderr.(*os.File); ok {
		tty = isTerminal(sf)
	}
	progress := &progress{w: stderr, tty: tty, start: time.Now(), counted: !*raw}
	src := io.TeeReader(body, progress)
	var st joinStats
	switch {
	case dcfg != nil:
		var rep *mkvstream.Report
		var log *bundleLog
		rep, log, st, err = decryptTo(f, src, *dcfg, mkvstream.Options{Strict: *strict}, *raw, progress)
		progress.done()
		printReport(stderr, rep, log, *dcfg)
		if serr := saveState(*state, rep); err == nil {
			err = serr
		}
		err = explain(err, log, *dcfg)
	case *raw:
		_, err = io.Copy(f, src)
		progress.done()
	default:
		st, err = joinProgress(f, src, progress)
		progress.done()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if nothingDecrypted(err) {
		f.remove()
	}
	if err == nil && !f.created() {
		err = errNoFragments
	}
	if errors.Is(err, errNoFragments) || errors.Is(err, errEncrypted) {
		return fmt.Errorf("%w: nothing written to %s", err, *out)
	}
	if err != nil {
		return err
	}
	if !*raw {
		fmt.Fprintf(stderr, "kvsgo: wrote %s: %d fragments, %d frames\n", *out, st.clusters, st.blocks)
	}
	return nil
}

// lazyFile creates its file at the first Write, so that a run that has
// nothing to write leaves no file behind.
type lazyFile struct {
	path string
	f    *os.File
}

func (l *lazyFile) Write(b []byte) (int, error) {
	if l.f == nil {
		if len(b) == 0 {
			return 0, nil
		}
		f, err := os.Create(l.path)
		if err != nil {
			return 0, err
		}
		l.f = f
	}
	return l.f.Write(b)
}

func (l *lazyFile) created() bool { return l.f != nil }

func (l *lazyFile) Close() error {
	if l.f == nil {
		return nil
	}
	return l.f.Close()
}

// remove deletes the file if it was created.
func (l *lazyFile) remove() {
	if l.f != nil {
		os.Remove(l.path)
	}
}

// caEnv is the element's variable for a private CA, which kvsgo honours too.
const caEnv = "KVSSINK_CA_CERT_PATH"

// netClient is the connection policy of every call (pkg/httpx): HTTP/1.1,
// TLS 1.2 or later, proxies from the environment, KVSGO_LOOPBACK_ONLY
// honoured, trusting the CA certificates of caPath, else of
// KVSSINK_CA_CERT_PATH (as the element does), else of AWS_CA_BUNDLE (as the
// AWS SDKs and CLI do), else the system's. A PEM file or a directory of
// them.
func netClient(caPath string, getenv func(string) string) (*httpx.Client, error) {
	what := "-ca-cert"
	for _, env := range []string{caEnv, "AWS_CA_BUNDLE"} {
		if caPath == "" {
			caPath, what = getenv(env), env
		}
	}
	o := httpx.FromEnv(getenv)
	o.ConnectTimeout = 10 * time.Second
	if caPath != "" {
		pool, err := httpx.LoadCertPool(caPath)
		if err != nil {
			return nil, fmt.Errorf("%s: CA certificates: %w", what, err)
		}
		o.RootCAs = pool
	}
	return httpx.New(o), nil
}

// progress prints bytes and fragments received, at most once a second and
// only to a terminal; done prints the total either way. fragments is counted
// by the joiner, which may run in another goroutine.
type progress struct {
	w         io.Writer
	tty       bool
	counted   bool // fragments are counted (not with -raw)
	n         int64
	fragments atomic.Int64
	start     time.Time
	last      time.Time
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); p.tty && now.Sub(p.last) >= time.Second {
		p.last = now
		fmt.Fprintf(p.w, "\rkvsgo: %s received in %s", p.amount(), now.Sub(p.start).Round(time.Second))
	}
	return len(b), nil
}

func (p *progress) amount() string {
	if !p.counted {
		return fmt.Sprintf("%.1f MB", float64(p.n)/1e6)
	}
	return fmt.Sprintf("%.1f MB, %d fragments", float64(p.n)/1e6, p.fragments.Load())
}

func (p *progress) done() {
	fmt.Fprintf(p.w, "\rkvsgo: %s received in %s\n", p.amount(), time.Since(p.start).Round(time.Millisecond))
}
