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

// The IAM/IoT/STS side (test/kvslocal/iam): the endpoint's URL serves the
// IoT, IAM, STS and KMS APIs besides KVS, and IAM policies are evaluated on
// every call; the IoT credentials provider listens at
// IOT_ENDPOINT=localhost:PORT (mutual TLS) and STS also at
// STS_URL=http://127.0.0.1:PORT, both printed after KVSLOCAL_URL. -iam and
// -iot-walkthrough start from a configuration instead of from nothing.
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
	iotCA          = flag.String("iot-ca", "", "CA certificate `file` of -iot-cert, served at /AmazonRootCA1.pem")
	stsListen      = flag.String("sts-listen", "127.0.0.1:0", "loopback `address` of STS (also served at the endpoint's URL)")
)

// startIAM starts the AWS side of the endpoint: the IoT, IAM and STS control
// planes served at the endpoint's own URL (routed by the signing service),
// the IoT credentials provider on its own port (mutual TLS) and STS on
// another for older clients. Without -iam or -iot-walkthrough it starts
// empty, so that the developer guide's commands create everything. It
// returns the authorizer and services for the KVS endpoint, the CA
// certificate clients trust for the credentials provider, and a stop
// function.
func startIAM(log *slog.Logger, adminKey, adminSecret, userName string) (*iam.Server, map[string]kvslocal.Service, []byte, func()) {
	var caPEM []byte
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
			admin := &iam.User{Name: userName, AccessKeyID: adminKey, SecretAccessKey: adminSecret, Policies: []iam.Policy{iam.AdminPolicy()}}
			if _, _, _, err := iam.Walkthrough(*iotWalkthrough, things, iam.WalkthroughOptions{Admin: admin}); err != nil {
				fail(1, "%v", err)
			}
		}
		*iamFile = cfg
		if *iotCert == "" {
			*iotCert, *iotKey = filepath.Join(*iotWalkthrough, iam.WalkthroughServerPEM), filepath.Join(*iotWalkthrough, iam.WalkthroughServerKey)
			b, err := os.ReadFile(filepath.Join(*iotWalkthrough, "ca.pem"))
			if err != nil {
				fail(1, "%v", err)
			}
			caPEM = b
		}
	}
	if !loopback(*iotListen) || !loopback(*stsListen) {
		fail(2, "-iot-listen and -sts-listen must be loopback addresses")
	}
	f := &iam.File{}
	if *iamFile != "" {
		var err error
		if f, err = iam.Load(*iamFile); err != nil {
			fail(1, "%v", err)
		}
	}
	az, err := iam.New(f, iam.Options{Logger: log, OwnUserName: userName})
	if err != nil {
		fail(1, "%v", err)
	}
	var cert tls.Certificate
	switch {
	case *iotCert != "":
		if cert, err = tls.LoadX509KeyPair(*iotCert, *iotKey); err != nil {
			fail(1, "-iot-cert/-iot-key: %v", err)
		}
		if *iotCA != "" {
			if caPEM, err = os.ReadFile(*iotCA); err != nil {
				fail(1, "-iot-ca: %v", err)
			}
		}
	default:
		// A CA of this run signs the credentials provider's certificate;
		// clients download it from the endpoint (as the guide downloads
		// Amazon's root CA).
		ca, err := iam.NewCA("kvslocal IoT credentials provider CA")
		if err != nil {
			fail(1, "%v", err)
		}
		leaf, err := ca.Issue(iam.IssueOptions{CommonName: *iotHost, Hosts: []string{*iotHost, "localhost", "127.0.0.1", "::1"}})
		if err != nil {
			fail(1, "%v", err)
		}
		if cert, err = leaf.TLSCertificate(); err != nil {
			fail(1, "%v", err)
		}
		caPEM = ca.CertPEM
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
	return az, az.Services(), caPEM, func() { az.Close() }
}

// CAPath is where the endpoint serves the credentials provider's CA
// certificate to unsigned GETs (curl … --output cacert.pem).
const CAPath = "/AmazonRootCA1.pem"

// announce prints the IoT and STS addresses after KVSLOCAL_URL.
var announce = func() {}
