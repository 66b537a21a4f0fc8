package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kvsgo/kvsgo/test/kvslocal"
	"github.com/kvsgo/kvsgo/test/kvslocal/iam"
)

// The IAM/IoT/STS side (test/kvslocal/iam): with -iam or -iot-walkthrough the
// endpoint evaluates IAM policies on every call, serves the IoT credentials
// provider at IOT_ENDPOINT=localhost:PORT (mutual TLS) and STS at
// STS_URL=http://127.0.0.1:PORT, both printed after KVSLOCAL_URL.
//
//	kvslocal -access-key AKID -secret-key SECRET -iot-walkthrough /tmp/iot -iot-things cam1,cam2
//
// writes the developer guide's walkthrough (CA, device certificates and keys,
// role, role alias, policies) into /tmp/iot on first use, and again (for the
// same things) once its certificates have expired; -access-key is its
// administrator.
var (
	iamFile        = flag.String("iam", "", "IAM/IoT configuration `file` (test/kvslocal/iam.File); enables policy evaluation, the IoT credentials provider and STS")
	iotWalkthrough = flag.String("iot-walkthrough", "", "`directory` of the IoT walkthrough; created with -iot-things if it has no iam.json; implies -iam DIR/iam.json")
	iotThings      = flag.String("iot-things", "cam1", "comma-separated thing (and stream) `names` for -iot-walkthrough")
	iotListen      = flag.String("iot-listen", "127.0.0.1:0", "loopback `address` of the IoT credentials provider")
	iotHost        = flag.String("iot-host", "localhost", "host `name` the IoT credentials provider answers for (SNI)")
	iotCert        = flag.String("iot-cert", "", "server certificate `file` of the IoT endpoint (default: the walkthrough's iot-server.pem)")
	iotKey         = flag.String("iot-key", "", "private key `file` of -iot-cert")
	stsListen      = flag.String("sts-listen", "127.0.0.1:0", "loopback `address` of STS")
)

// startIAM starts the IoT and STS endpoints when asked to, and returns the
// authorizer for the KVS endpoint (nil when not asked), with a stop function.
func startIAM(log *slog.Logger, adminKey, adminSecret string) (kvslocal.Authorizer, func()) {
	if *iotWalkthrough != "" {
		cfg := filepath.Join(*iotWalkthrough, iam.WalkthroughConfig)
		things := strings.Split(*iotThings, ",")
		_, err := os.Stat(cfg)
		create := err != nil
		if !create && iam.WalkthroughExpired(*iotWalkthrough, time.Now()) {
			// Its certificates are past NotAfter: every handshake would
			// fail. Make it anew for the same things.
			log.Warn("IoT walkthrough certificates expired; making the walkthrough anew", "dir", *iotWalkthrough)
			if f, err := iam.Load(cfg); err == nil && len(f.Things) > 0 {
				things = nil
				for _, t := range f.Things {
					things = append(things, t.Name)
				}
			}
			create = true
		}
		if create {
			if err := os.MkdirAll(*iotWalkthrough, 0o700); err != nil {
				fail(1, "%v", err)
			}
			admin := &iam.User{Name: "admin", AccessKeyID: adminKey, SecretAccessKey: adminSecret, Policies: []iam.Policy{iam.AdminPolicy()}}
			if _, _, _, err := iam.Walkthrough(*iotWalkthrough, things, iam.WalkthroughOptions{Admin: admin}); err != nil {
				fail(1, "%v", err)
			}
		}
		*iamFile = cfg
		if *iotCert == "" {
			*iotCert, *iotKey = filepath.Join(*iotWalkthrough, iam.WalkthroughServerPEM), filepath.Join(*iotWalkthrough, iam.WalkthroughServerKey)
		}
	}
	if *iamFile == "" {
		return nil, func() {}
	}
	if !loopback(*iotListen) || !loopback(*stsListen) {
		fail(2, "-iot-listen and -sts-listen must be loopback addresses")
	}
	f, err := iam.Load(*iamFile)
	if err != nil {
		fail(1, "%v", err)
	}
	az, err := iam.New(f, iam.Options{Logger: log})
	if err != nil {
		fail(1, "%v", err)
	}
	if *iotCert == "" {
		fail(2, "-iam needs -iot-cert and -iot-key (a certificate for %s signed by the devices' CA)", *iotHost)
	}
	cert, err := tls.LoadX509KeyPair(*iotCert, *iotKey)
	if err != nil {
		fail(1, "-iot-cert/-iot-key: %v", err)
	}
	ep, err := az.StartIoT(*iotListen, *iotHost, cert)
	if err != nil {
		fail(1, "%v", err)
	}
	sts, err := az.StartSTS(*stsListen)
	if err != nil {
		fail(1, "%v", err)
	}
	announce = func() { fmt.Printf("IOT_ENDPOINT=%s\nSTS_URL=%s\n", ep, sts) }
	log.Info("IAM", "config", *iamFile, "iot_endpoint", ep, "sts", sts)
	return az, func() { az.Close() }
}

// announce prints the IoT and STS addresses after KVSLOCAL_URL.
var announce = func() {}
