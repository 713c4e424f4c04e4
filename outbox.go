package msc

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// errOutboxFull is why a connection to a peer that takes in nothing is
// closed: more than outboxLimit bytes wait for it.
var errOutboxFull = errors.New("msc: peer reads too slowly: its send queue is full")

// outboxLimit is how many bytes may wait to be sent on one connection:
// room for a few frames of the largest size.
const outboxLimit = 4 * MaxFrameSize

// outbox is the sending side of a connection's socket. Until start, a
// write is a plain blocking write (the handshake). After it, a write never
// waits for the network: it writes what the socket takes at once, from
// the caller's goroutine (the elector, for every connection in turn: the
// node's writes are batched in its own step), and queues the rest for a
// flusher goroutine, which exists only while bytes are queued, that is
// while the peer's socket buffer is full.
//
// The flusher is started by Write and ends when the queue is empty or a
// write fails; wg waits for it (conn.serve, after close).
type outbox struct {
	net.Conn                // the socket: reads, deadlines, Close go to it
	wait     time.Duration  // the flusher's write deadline
	raw      rawWriter      // non-blocking writes; nil: every write is queued
	wg       sync.WaitGroup // the flusher

	mu       sync.Mutex
	async    bool   // start has run
	queued   []byte // bytes the socket did not take yet, in order
	spare    []byte // the flusher's buffer, swapped with queued
	flushing bool
	shut     bool  // CloseWrite once the queue is empty
	err      error // the first failure; nothing more is sent
}

// rawWriter writes what the socket takes now, without waiting: the bytes
// written, and an error other than "would block".
type rawWriter func(p []byte) (int, error)

func newOutbox(nc net.Conn, wait time.Duration) *outbox {
	return &outbox{Conn: nc, wait: wait, raw: nonBlockingWriter(nc)}
}

// start makes writes asynchronous.
func (o *outbox) start() {
	o.mu.Lock()
	o.async = true
	o.mu.Unlock()
}

// Write sends p, or queues what the socket does not take now. It fails
// once a write has failed, the connection is closed, or the queue would
// pass outboxLimit (then it closes the connection).
func (o *outbox) Write(p []byte) (int, error) {
	o.mu.Lock()
	if !o.async {
		o.mu.Unlock()
		return o.Conn.Write(p)
	}
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, o.err
	}
	if o.shut {
		return 0, net.ErrClosed
	}
	n := 0
	if !o.flushing && o.raw != nil {
		var err error
		n, err = o.raw(p)
		if err != nil {
			o.failLocked(err)
			return n, err
		}
		if n == len(p) {
			return n, nil
		}
	}
	if len(o.queued)+len(p)-n > outboxLimit {
		o.failLocked(errOutboxFull)
		return n, errOutboxFull
	}
	o.queued = append(o.queued, p[n:]...)
	if !o.flushing {
		o.flushing = true
		o.wg.Add(1)
		go o.flush()
	}
	return len(p), nil
}

// failLocked records the first failure and closes the socket, which ends
// the connection's read loop; o.mu is held.
func (o *outbox) failLocked(err error) {
	if o.err == nil {
		o.err = err
	}
	o.Conn.Close()
}

// flush is the flusher goroutine: it writes the queue, blocking, until it
// is empty, then half-closes if asked to, and ends.
func (o *outbox) flush() {
	defer o.wg.Done()
	for {
		o.mu.Lock()
		if o.err != nil || len(o.queued) == 0 {
			if o.err == nil {
				// The next non-blocking write would fail on a
				// deadline left in the past.
				o.Conn.SetWriteDeadline(time.Time{})
				if o.shut {
					o.closeWrite()
				}
			}
			o.flushing = false
			o.mu.Unlock()
			return
		}
		b := o.queued
		o.queued, o.spare = o.spare[:0], nil
		o.mu.Unlock()

		o.Conn.SetWriteDeadline(time.Now().Add(o.wait))
		_, err := o.Conn.Write(b)

		o.mu.Lock()
		o.spare = b[:0]
		if err != nil {
			o.failLocked(fmt.Errorf("msc: write: %w", err))
		}
		o.mu.Unlock()
	}
}

// SetWriteDeadline sets the socket's write deadline until start; after,
// the outbox owns it (the flusher's), and a caller's deadline is ignored:
// a TLS connection's CloseWrite sets one that would cut the queue short.
func (o *outbox) SetWriteDeadline(t time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.async {
		return nil
	}
	return o.Conn.SetWriteDeadline(t)
}

// SetDeadline sets the read deadline, and the write deadline until start
// (SetWriteDeadline).
func (o *outbox) SetDeadline(t time.Time) error {
	if err := o.SetWriteDeadline(t); err != nil {
		return err
	}
	return o.Conn.SetReadDeadline(t)
}

// drain waits until what is queued is sent, or d has passed, and reports
// whether the queue is empty.
func (o *outbox) drain(d time.Duration) bool {
	for deadline := time.Now().Add(d); ; {
		o.mu.Lock()
		done := !o.flushing
		o.mu.Unlock()
		if done || time.Now().After(deadline) {
			return done
		}
		time.Sleep(time.Millisecond)
	}
}

// CloseWrite half-closes the connection once what is queued is sent: the
// peer reads everything, then EOF.
func (o *outbox) CloseWrite() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.shut || o.err != nil {
		return o.err
	}
	o.shut = true
	if !o.flushing {
		o.closeWrite()
	}
	return nil
}

func (o *outbox) closeWrite() {
	if cw, ok := o.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		o.Conn.Close()
	}
}

// Close closes the socket; a flusher blocked in a write then ends.
func (o *outbox) Close() error {
	o.mu.Lock()
	o.failLocked(net.ErrClosed)
	o.mu.Unlock()
	return nil
}
