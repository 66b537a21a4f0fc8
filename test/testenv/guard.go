package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
)

// GuardLoopback makes every name resolution through net.DefaultResolver that
// would need a DNS server fail loudly (host names in /etc/hosts, such as
// localhost, still resolve) and sets KVSGO_LOOPBACK_ONLY so that kvsgo's own
// HTTP clients, in this process and in the gst-launch processes tests start,
// refuse to dial anything but 127.0.0.0/8 and ::1. Call it from TestMain.
func GuardLoopback() {
	os.Setenv("KVSGO_LOOPBACK_ONLY", "1")
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			fmt.Fprintf(os.Stderr, "testenv: a test tried to resolve a name through DNS server %s; tests may only talk to 127.0.0.1/::1\n", address)
			return nil, fmt.Errorf("testenv: DNS lookups are not allowed in tests (server %s)", address)
		},
	}
}
