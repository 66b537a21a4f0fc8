package kvslocal

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The standalone program is killed with SIGKILL while the official
// producer's body streams into it. Restarted on the same Dir, it serves
// every fragment it acknowledged PERSISTED, and never a torn one: every
// fragment GetMedia and ListFragments return parses and carries the
// fixture's frames.
func TestDurabilityAcrossSIGKILL(t *testing.T) {
	fx := loadFixture(t)
	bin := filepath.Join(t.TempDir(), "kvslocal")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/kvslocal").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// k is the number of PERSISTED acks after which the program is killed;
	// mid also waits for the next BUFFERING, so that a fragment is being
	// written at that moment.
	for _, c := range []struct {
		k   int
		mid bool
	}{{1, false}, {1, true}, {4, false}, {6, true}, {9, true}} {
		t.Run(fmt.Sprintf("k=%d,mid=%v", c.k, c.mid), func(t *testing.T) {
			dir := t.TempDir()
			url, proc := runProgram(t, bin, dir)
			createStream(t, url, "durable", 24)
			s := startPut(t, url, putOptions{stream: "durable"})
			if resp := s.awaitStatus(t, fx.data[:1]); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			go writeChunked(s.w, fx.data[1:])
			var persisted []string
			for len(persisted) < c.k {
				a, ok := s.next(t, 10*time.Second)
				if !ok {
					t.Fatalf("the acks ended after %d PERSISTED", len(persisted))
				}
				if a.EventType == "PERSISTED" {
					persisted = append(persisted, a.FragmentNumber)
				}
			}
			for c.mid {
				a, ok := s.next(t, 10*time.Second)
				if !ok {
					t.Fatal("the acks ended before the next BUFFERING")
				}
				if a.EventType == "BUFFERING" {
					break
				}
			}
			proc.Process.Kill() // SIGKILL: no deferred cleanup, no fsync beyond what was done
			proc.Wait()

			url, _ = runProgram(t, bin, dir)
			numbers := listFragmentNumbers(t, url, "durable")
			for _, p := range persisted {
				if !slices.Contains(numbers, p) {
					t.Fatalf("fragment %s was acknowledged PERSISTED but is not listed after the restart (listed %v)", p, numbers)
				}
			}
			if len(numbers) < c.k || len(numbers) > 10 {
				t.Fatalf("%d fragments listed after %d PERSISTED", len(numbers), c.k)
			}
			checkServed(t, url, "durable", fx, len(numbers))
			chunks, _ := getMedia(t, url, "durable", map[string]any{"StartSelectorType": "EARLIEST"})
			for i, ch := range chunks {
				if got := ch.tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"]; got != numbers[i] {
					t.Fatalf("GetMedia chunk %d is fragment %s, ListFragments says %s", i, got, numbers[i])
				}
			}
			// No fragment file outside the index, no temporary file left.
			files, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "*"))
			for _, f := range files {
				if b := filepath.Base(f); b != "index.jsonl" && !strings.HasSuffix(b, ".frag") {
					t.Errorf("left over after the restart: %s", b)
				}
			}
		})
	}
}

// runProgram starts the standalone program on dir and returns its URL; it
// is killed when the test ends.
func runProgram(t *testing.T, bin, dir string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-dir", dir, "-access-key", testKey, "-secret-key", testSecret,
		"-getmedia-idle", "300ms")
	cmd.Env = append(os.Environ(), "AWS_SESSION_TOKEN=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		l, _ := br.ReadString('\n')
		line <- l
		io.Copy(io.Discard, br)
	}()
	select {
	case l := <-line:
		url, ok := strings.CutPrefix(strings.TrimSpace(l), "KVSLOCAL_URL=")
		if !ok {
			t.Fatalf("first line %q", l)
		}
		return url, cmd
	case <-time.After(10 * time.Second):
		t.Fatal("the program printed no URL within 10 s")
	}
	return "", nil
}

// listFragmentNumbers returns the fragment numbers ListFragments lists,
// in order.
func listFragmentNumbers(t *testing.T, url, stream string) []string {
	t.Helper()
	resp := signedPost(t, url, "/listFragments", map[string]any{"StreamName": stream, "MaxResults": 1000})
	var out struct {
		Fragments []struct{ FragmentNumber string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); resp.StatusCode != 200 || err != nil {
		t.Fatalf("ListFragments: %d %v", resp.StatusCode, err)
	}
	var numbers []string
	for _, f := range out.Fragments {
		numbers = append(numbers, f.FragmentNumber)
	}
	slices.Sort(numbers) // equal-length decimal numbers: text order is numeric order
	return numbers
}
