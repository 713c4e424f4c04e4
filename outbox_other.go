//go:build !unix

package msc

import "net"

// nonBlockingWriter: no non-blocking writes here; the flusher writes.
func nonBlockingWriter(net.Conn) rawWriter { return nil }
