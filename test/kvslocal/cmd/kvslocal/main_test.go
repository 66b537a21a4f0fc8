package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The program prints its URL first, serves, and stops on SIGTERM.
func TestRunStandalone(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kvslocal")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-dir", t.TempDir(), "-access-key", "AKID", "-secret-key", "SECRET")
	cmd.Env = append(os.Environ(), "AWS_SESSION_TOKEN=")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "KVSLOCAL_URL=http://127.0.0.1:") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop on SIGTERM")
	}
	// With -tls-dir it serves https://localhost:PORT with a CA it writes.
	tlsDir := t.TempDir()
	cmd = exec.Command(bin, "-listen", "127.0.0.1:0", "-dir", t.TempDir(), "-access-key", "AKID", "-secret-key", "SECRET", "-tls-dir", tlsDir)
	stdout, _ = cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err = bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "KVSLOCAL_URL=https://localhost:") {
		t.Fatalf("first line with -tls-dir %q, %v", line, err)
	}
	if _, err := os.Stat(filepath.Join(tlsDir, "ca.pem")); err != nil {
		t.Fatalf("-tls-dir wrote no CA: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if out, err := exec.Command(bin, "-listen", "0.0.0.0:0", "-access-key", "a", "-secret-key", "b").CombinedOutput(); err == nil || !strings.Contains(string(out), "not a loopback address") {
		t.Fatalf("a non-loopback address was accepted: %v %s", err, out)
	}
}
