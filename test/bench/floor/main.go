// Command floor measures what any producer must at least spend to move a
// file's frames once through its own memory and out of a loopback TCP
// socket: the floor under kvssink's CPU in scripts/bench.
//
//	floor recv                          listen on 127.0.0.1, print the address, discard what arrives
//	floor read -file F -frames N        read F in N frame-sized pieces
//	floor send -file F -frames N -addr A
//	                                    read as above, copy every piece into a
//	                                    reused 2-second fragment buffer, and write
//	                                    it to A in pieces of at least 64 KiB
//
// Run under /usr/bin/time, send minus read is the cost of one copy and the
// kernel's cost of sending the bytes over loopback.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: floor recv | read -file F -frames N | send -file F -frames N -addr A")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	file := fs.String("file", "", "input file")
	frames := fs.Int("frames", 0, "frames in the file")
	addr := fs.String("addr", "", "address of a floor recv")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "recv":
		err = recv()
	case "read", "send":
		err = run(os.Args[1] == "send", *file, *frames, *addr)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func recv() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(l.Addr())
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			io.Copy(io.Discard, c)
		}()
	}
}

func run(send bool, file string, frames int, addr string) error {
	if file == "" || frames <= 0 {
		return errors.New("give -file and -frames")
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := int(st.Size()) / frames
	var conn net.Conn
	if send {
		if conn, err = net.Dial("tcp", addr); err != nil {
			return err
		}
		defer conn.Close()
	}
	piece := make([]byte, size)
	frag := make([]byte, 0, 60*size+size)
	sent := 0
	for i := 0; ; i++ {
		n, err := io.ReadFull(f, piece)
		if n == 0 || errors.Is(err, io.EOF) {
			break
		}
		if !send {
			continue
		}
		if i%60 == 0 {
			frag, sent = frag[:0], 0
		}
		frag = append(frag, piece[:n]...)
		if len(frag)-sent >= 64<<10 || i%60 == 59 || n < size {
			if _, err := conn.Write(frag[sent:]); err != nil {
				return err
			}
			sent = len(frag)
		}
		if n < size {
			break
		}
	}
	if send && sent < len(frag) {
		_, err = conn.Write(frag[sent:])
	}
	return err
}
