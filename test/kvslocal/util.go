package kvslocal

import (
	"bytes"
	"io"
)

func bytesReader(b []byte) io.Reader {
	if len(b) == 0 {
		return bytes.NewReader([]byte("{}"))
	}
	return bytes.NewReader(b)
}
