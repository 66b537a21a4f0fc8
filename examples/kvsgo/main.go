// Command kvsgo is the consumer side of kvsgo: it reads a Kinesis video
// stream back (GetMedia) into a single playable Matroska file, decrypting
// an end-to-end encrypted stream on the way when given -key and -device.
//
//	kvsgo get -stream NAME [-start EARLIEST|NOW|FRAGMENT_NUMBER|PRODUCER_TIMESTAMP|SERVER_TIMESTAMP|CONTINUATION_TOKEN]
//	          [-after N] [-timestamp RFC3339] [-token T] [-key FILE [-key FILE] -device ENTRY|FILE [-strict]]
//	          [-raw] [-o out.mkv]
//	kvsgo keygen -kind x25519|xwing|ed25519 -o FILE [-pub PUBFILE]   (writes FILE, mode 0600, and FILE.pub or PUBFILE)
//	kvsgo decrypt -stream NAME -device ENTRY|FILE -key FILE [-key FILE] [-i in.mkv] [-o out.mkv] [-raw] [-strict]
//	kvsgo encrypt -stream NAME -signing-key FILE -recipients ENTRY|FILE [-suite S] [-i in.mkv] [-o out.mkv]
//
// keygen, decrypt and encrypt handle end-to-end encrypted streams
// (pkg/e2ee): "get -key" decrypts as it downloads; decrypt takes what
// "get -raw" wrote or a PutMedia body.
//
// The endpoint, region and credentials come from the same places as the
// element's: AWS_ENDPOINT_URL_KINESIS_VIDEO, CONTROL_PLANE_URI or
// AWS_ENDPOINT_URL; AWS_REGION; AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
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
	var keys listFlag
	fs.Var(&keys, "key", "recipient private key file of an end-to-end encrypted stream (repeatable; needs -device)")
	devices := fs.String("device", "", "pinned device public keys of an encrypted stream: ed25519:BASE64 entries or files of them, comma-separated (needs -key)")
	strict := fs.Bool("strict", false, "with -key: fail on the first frame or bundle that does not decrypt instead of dropping it")
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
	cr, err := credentials.Resolve(ctx, credentials.Sources{}, credentials.Options{Region: rgn})
	if errors.Is(err, credentials.ErrNoCredentials) {
		return fmt.Errorf("get: %w; kvsgo reads %s", err, credentials.EnvironmentHint)
	}
	if err != nil {
		return err
	}
	creds := cr.Provider
	ctl, err := kvs.NewControl(kvs.ControlConfig{Endpoint: ep, Region: rgn, Credentials: creds})
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
	body, err := kvs.GetMedia(ctx, kvs.GetMediaConfig{Endpoint: dataEP, StreamName: *stream, Region: rgn, Credentials: creds, Start: sel})
	if err != nil {
		return err
	}
	defer body.Close()
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
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
		os.Remove(*out)
	}
	if err != nil {
		return err
	}
	if !*raw {
		fmt.Fprintf(stderr, "kvsgo: wrote %s: %d fragments, %d frames\n", *out, st.clusters, st.blocks)
	}
	return nil
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
