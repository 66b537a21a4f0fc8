package testenv

import (
	"net"
	"os/exec"
	"testing"
	"time"
)

// Moto starts moto_server (preinstalled with pip's moto) on a free loopback
// port for the test and returns its URL. The tests use it only as an oracle
// of AWS's answer shapes, never as the thing tested.
func Moto(t testing.TB) string {
	t.Helper()
	moto := Tool(t, "moto_server", "python3-moto (pip moto)")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(moto, "-H", "127.0.0.1", "-p", port)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("moto_server did not start within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "http://" + addr
}
