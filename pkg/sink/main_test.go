package sink

import (
	"os"
	"testing"

	"github.com/kvsgo/kvsgo/test/testenv"
)

// TestMain keeps every test on loopback: settings tests that find no
// credentials run the SDK's default chain, which must never reach the
// instance metadata service or a user's ~/.aws files.
func TestMain(m *testing.M) {
	testenv.GuardLoopback()
	os.Setenv("AWS_CONFIG_FILE", os.DevNull)
	os.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	os.Exit(m.Run())
}
