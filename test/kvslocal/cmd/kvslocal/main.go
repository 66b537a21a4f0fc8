// Command kvslocal runs the local Kinesis Video Streams endpoint
// (test/kvslocal) on a loopback address. Its first line of output is
// KVSLOCAL_URL=<base URL>; it serves until SIGINT or SIGTERM.
//
//	kvslocal -listen 127.0.0.1:4567 -dir /tmp/kvs -access-key AKID -secret-key SECRET
//
// With -tls-dir DIR it serves HTTPS (HTTP/1.1 only) at https://localhost:PORT
// with a test CA kept in DIR; clients trust DIR/ca.pem (for kvsgo:
// KVSSINK_CA_CERT_PATH=DIR/ca.pem).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback `address` to listen on (port 0 picks one)")
	dir := flag.String("dir", "kvslocal-data", "storage `directory` (kept across runs)")
	region := flag.String("region", kvslocal.DefaultRegion, "`region` clients sign for")
	account := flag.String("account-id", kvslocal.DefaultAccountID, "`account` in stream ARNs")
	ak := flag.String("access-key", "", "access key `id` to accept (default $AWS_ACCESS_KEY_ID)")
	sk := flag.String("secret-key", "", "secret access `key` to accept (default $AWS_SECRET_ACCESS_KEY)")
	token := flag.String("session-token", "", "session `token` the access key needs, if any (default $AWS_SESSION_TOKEN)")
	printURL := flag.Bool("print-url", true, "print KVSLOCAL_URL=<base URL> as the first line on stdout")
	capture := flag.Bool("capture", false, "keep every PutMedia body in DIR/captures")
	idleAck := flag.Duration("idle-ack", kvslocal.DefaultIdleAckInterval, "send IDLE acks after this long without PutMedia data")
	getMediaIdle := flag.Duration("getmedia-idle", kvslocal.DefaultGetMediaIdleTimeout, "end GetMedia after this long without a new fragment")
	verbose := flag.Bool("v", false, "log every request (never secrets)")
	tlsDir := flag.String("tls-dir", "", "serve HTTPS at https://localhost:PORT with the test CA in `directory` (ca.pem, server.pem, server.key; generated if absent)")
	auditLog := flag.String("audit-log", "", "append a CloudTrail-shaped JSON event of every API call to `file` (never secrets)")
	masterKey := flag.String("master-key", "", "`file` with the master key of encryption at rest (created 0600 if absent; default DIR.master-key, beside DIR)")
	userName := flag.String("user-name", "admin", "IAM user `name` of -access-key (in the audit log and GetCallerIdentity)")
	flag.Parse()
	if flag.NArg() > 0 {
		fail(2, "unexpected arguments %q", flag.Args())
	}
	env := func(v *string, name string) {
		if *v == "" {
			*v = os.Getenv(name)
		}
	}
	env(ak, "AWS_ACCESS_KEY_ID")
	env(sk, "AWS_SECRET_ACCESS_KEY")
	env(token, "AWS_SESSION_TOKEN")
	if *ak == "" || *sk == "" {
		fail(2, "give -access-key and -secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	}
	if !loopback(*listen) {
		fail(2, "-listen %s is not a loopback address (127.0.0.0/8, ::1 or localhost)", *listen)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var tlsCfg *kvslocal.TLSConfig
	if *tlsDir != "" {
		ca, err := kvslocal.OpenTestCA(*tlsDir)
		if err != nil {
			fail(1, "%v", err)
		}
		tlsCfg = ca.TLS()
		log.Info("TLS", "ca", ca.CAFile)
	}
	authz, services, caPEM, stopIAM := startIAM(log, *ak, *sk, *userName) // iam.go
	defer stopIAM()
	var public map[string][]byte
	if caPEM != nil {
		public = map[string][]byte{CAPath: caPEM}
	}
	srv, err := kvslocal.New(kvslocal.Config{Authorizer: authz, Services: services, PublicFiles: public, UserName: *userName, TLS: tlsCfg, Dir: *dir, Region: *region, AccountID: *account, Logger: log, CaptureBodies: *capture,
		IdleAckInterval: *idleAck, GetMediaIdleTimeout: *getMediaIdle, AuditLog: *auditLog, MasterKeyFile: *masterKey,
		Credentials: []kvslocal.Credential{{AccessKeyID: *ak, SecretAccessKey: *sk, SessionToken: *token}}})
	if err != nil {
		fail(1, "%v", err)
	}
	authz.SetAudit(srv.Audit) // the credentials provider's issuances and refusals
	// Catch the signals before announcing the URL: whoever reads it may
	// stop us at once.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	url, err := srv.Start(*listen)
	if err != nil {
		fail(1, "%v", err)
	}
	if *printURL {
		fmt.Printf("KVSLOCAL_URL=%s\n", url)
		announce()
	}
	log.Info("serving", "url", url, "dir", *dir, "region", *region)
	s := <-sig
	log.Info("stopping", "signal", s.String())
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			fail(1, "%v", err)
		}
	case <-time.After(10 * time.Second):
		fail(1, "did not stop within 10 s")
	}
}

// loopback reports whether addr (host:port) is on a loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kvslocal: "+format+"\n", args...)
	os.Exit(code)
}
