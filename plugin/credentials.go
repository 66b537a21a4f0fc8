package main

import (
	"github.com/go-gst/go-gst/gst"

	"github.com/kvsgo/kvsgo/pkg/sink"
)

// announceCredentials tells the application about the credential source the
// element resolved: non-fatal problems (a private key readable by other
// users) as element warnings, and, for iot-certificate, the AWS IoT
// certificate id it presents (streams may be named after it) as an element
// message:
//
//	kvs-iot-certificate, certificate-id=(string)<64 hex>, stream-name=(string)<name>;
func (e *element) announceCredentials(cfg sink.Config) {
	for _, w := range cfg.CredentialWarnings {
		e.post(kindWarning, domainResource, int(gst.ResourceErrorOpenRead), w, "")
	}
	if cfg.CertificateID == "" {
		return
	}
	e.log(levelInfo, "iot-certificate: presenting certificate id "+cfg.CertificateID)
	e.message("kvs-iot-certificate", str("certificate-id", cfg.CertificateID), str("stream-name", cfg.StreamName))
}
