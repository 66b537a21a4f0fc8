package kvs

import (
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// tryWritev writes the buffers to conn's socket without waiting: one
// writev on the non-blocking descriptor, whatever the kernel takes. It
// returns how many bytes went out (0 when the send buffer is full).
func tryWritev(conn *net.TCPConn, bufs [][]byte) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var iov [4]syscall.Iovec
	n := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	var wrote int
	var errno syscall.Errno
	werr := rc.Write(func(fd uintptr) bool {
		r, _, e := syscall.Syscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		wrote, errno = int(r), e
		return true // never wait: a full send buffer is the caller's to handle
	})
	runtime.KeepAlive(bufs)
	if werr != nil {
		return 0, werr
	}
	switch errno {
	case 0:
		return wrote, nil
	case syscall.EAGAIN, syscall.EINTR:
		return 0, nil
	}
	return 0, &net.OpError{Op: "writev", Net: "tcp", Source: conn.LocalAddr(), Addr: conn.RemoteAddr(), Err: errno}
}

const canTryWrite = true
