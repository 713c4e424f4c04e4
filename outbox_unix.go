//go:build unix

package msc

import (
	"net"
	"syscall"
)

// nonBlockingWriter returns a writer that writes what the socket under nc
// takes now and does not wait for it to take more, or nil if nc has no
// file descriptor (then every write goes through the flusher).
func nonBlockingWriter(nc net.Conn) rawWriter {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(p []byte) (int, error) {
		n := 0
		var werr error
		// The runtime keeps the socket non-blocking; returning true
		// ends the call whether or not the socket took everything.
		err := rc.Write(func(fd uintptr) bool {
			for n < len(p) {
				k, err := syscall.Write(int(fd), p[n:])
				if k > 0 {
					n += k
				}
				switch {
				case err == syscall.EINTR:
					continue
				case err == syscall.EAGAIN:
					return true
				case err != nil:
					werr = err
					return true
				case k <= 0:
					return true
				}
			}
			return true
		})
		if werr == nil {
			werr = err
		}
		return n, werr
	}
}
