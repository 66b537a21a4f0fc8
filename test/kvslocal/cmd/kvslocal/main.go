// Command kvslocal runs the local Kinesis Video Streams endpoint on
// loopback. It prints KVSLOCAL_URL=<base URL> as its first line of output
// and serves until interrupted.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/kvsgo/kvsgo/pkg/kvs"
	"github.com/kvsgo/kvsgo/test/kvslocal"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (loopback)")
	dir := flag.String("dir", "kvslocal-data", "storage directory")
	region := flag.String("region", "us-west-2", "region clients sign for")
	ak := flag.String("access-key", os.Getenv("AWS_ACCESS_KEY_ID"), "access key id to accept (default $AWS_ACCESS_KEY_ID)")
	sk := flag.String("secret-key", "", "secret key to accept (default $AWS_SECRET_ACCESS_KEY)")
	capture := flag.Bool("capture", false, "keep every PutMedia body in DIR/captures")
	verbose := flag.Bool("v", false, "log every request")
	flag.Parse()
	if *sk == "" {
		*sk = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	if *ak == "" || *sk == "" {
		fmt.Fprintln(os.Stderr, "kvslocal: give -access-key and -secret-key (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
		os.Exit(2)
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil || !kvs.IsLoopbackHost(host) {
		fmt.Fprintf(os.Stderr, "kvslocal: -listen %s is not a loopback address\n", *listen)
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	srv, err := kvslocal.New(kvslocal.Config{Dir: *dir, Region: *region, Logger: log, CaptureBodies: *capture,
		Credentials: []kvslocal.Credential{{AccessKeyID: *ak, SecretAccessKey: *sk}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvslocal:", err)
		os.Exit(1)
	}
	url, err := srv.Start(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvslocal:", err)
		os.Exit(1)
	}
	fmt.Printf("KVSLOCAL_URL=%s\n", url)
	log.Info("serving", "url", url, "dir", *dir, "region", *region)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Close()
}
