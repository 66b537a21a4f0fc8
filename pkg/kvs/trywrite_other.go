//go:build !linux

package kvs

import (
	"errors"
	"net"
)

// tryWritev needs writev on a non-blocking socket (Linux): elsewhere
// TryWrite always reports that the caller must Write.
func tryWritev(*net.TCPConn, [][]byte) (int, error) {
	return 0, errors.ErrUnsupported
}

const canTryWrite = false
