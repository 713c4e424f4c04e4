package msc

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection, with small
// socket buffers, so that a peer that does not read fills them soon.
func tcpPair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	d, l := loopbackPair(t)
	a, b = d.(*net.TCPConn), l.(*net.TCPConn)
	a.SetWriteBuffer(32 << 10)
	b.SetReadBuffer(32 << 10)
	return a, b
}

// writeAll writes chunks through o, each within a second (a write never
// waits for the peer), and returns what it wrote.
func writeAll(t *testing.T, o *outbox, chunks, size int) []byte {
	t.Helper()
	var all []byte
	for i := range chunks {
		p := bytes.Repeat([]byte{byte(i)}, size)
		done := make(chan error, 1)
		go func() {
			_, err := o.Write(p)
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		case <-time.After(time.Second):
			t.Fatalf("write %d blocked on a peer that does not read", i)
		}
		all = append(all, p...)
	}
	return all
}

// TestOutboxQueuesForSlowPeer: writes to a peer that does not read return
// at once; what the socket does not take is queued, in order, and sent
// once the peer reads; then the flusher ends.
func TestOutboxQueuesForSlowPeer(t *testing.T) {
	for _, mode := range []string{"non-blocking", "flusher only"} {
		t.Run(mode, func(t *testing.T) {
			a, b := tcpPair(t)
			o := newOutbox(a, 5*time.Second)
			if mode == "flusher only" {
				o.raw = nil // a socket without a file descriptor
			}
			o.start()
			want := writeAll(t, o, 64, 8192) // 512 KiB: far more than the buffers hold
			o.mu.Lock()
			queued := len(o.queued) + len(o.spare)
			flushing := o.flushing
			o.mu.Unlock()
			if !flushing {
				t.Errorf("nothing queued after %d bytes to a peer that does not read (queued %d)", len(want), queued)
			}
			got := make([]byte, len(want))
			b.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(b, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("the peer read other bytes than were written, or out of order")
			}
			waitGroupDone(t, o)
		})
	}
}

// waitGroupDone waits for o's flusher to end.
func waitGroupDone(t *testing.T, o *outbox) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		o.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the flusher did not end")
	}
}

// TestOutboxFullCloses: a peer that reads nothing while more than
// outboxLimit bytes wait gets its connection closed; later writes fail at
// once.
func TestOutboxFullCloses(t *testing.T) {
	a, b := tcpPair(t)
	o := newOutbox(a, time.Minute)
	o.start()
	p := make([]byte, 64<<10)
	var err error
	for i := 0; i < 2*outboxLimit/len(p) && err == nil; i++ {
		_, err = o.Write(p)
	}
	if !errors.Is(err, errOutboxFull) {
		t.Fatalf("writes went on past the limit: %v", err)
	}
	if _, err := o.Write(p); !errors.Is(err, errOutboxFull) {
		t.Errorf("a write after the failure: %v, want errOutboxFull", err)
	}
	waitGroupDone(t, o)
	// The peer sees the connection end.
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, b); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the peer's read: %v, want EOF or a reset", err)
	}
}

// TestOutboxCloseWriteAfterQueue: a half-close asked for while bytes are
// queued comes after them: the peer reads everything, then EOF.
func TestOutboxCloseWriteAfterQueue(t *testing.T) {
	a, b := tcpPair(t)
	o := newOutbox(a, 5*time.Second)
	o.start()
	want := writeAll(t, o, 32, 8192)
	if err := o.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Write([]byte("late")); err == nil {
		t.Error("a write after CloseWrite succeeded")
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written, then EOF", len(got), len(want))
	}
	waitGroupDone(t, o)
}

// TestOutboxCloseEndsFlusher: closing the connection while the flusher is
// blocked on a peer that does not read ends it.
func TestOutboxCloseEndsFlusher(t *testing.T) {
	a, _ := tcpPair(t)
	o := newOutbox(a, time.Minute)
	o.start()
	writeAll(t, o, 64, 8192)
	o.Close()
	waitGroupDone(t, o)
	if _, err := o.Write([]byte("x")); err == nil {
		t.Error("a write after Close succeeded")
	}
}

// TestOutboxWritesAfterFlush: once the flusher has drained the queue, a
// write long after its deadline still goes out (the deadline the flusher
// set is cleared).
func TestOutboxWritesAfterFlush(t *testing.T) {
	a, b := tcpPair(t)
	const wait = 100 * time.Millisecond
	o := newOutbox(a, wait)
	o.start()
	want := writeAll(t, o, 64, 8192)
	got := make([]byte, len(want))
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	waitGroupDone(t, o)
	time.Sleep(2 * wait) // past the flusher's last deadline
	if _, err := o.Write([]byte("heartbeat")); err != nil {
		t.Fatalf("a write after the queue drained: %v", err)
	}
	if _, err := io.ReadFull(b, got[:9]); err != nil || string(got[:9]) != "heartbeat" {
		t.Fatalf("read %q, %v", got[:9], err)
	}
}

// TestOutboxTLSCloseWrite: a TLS connection over the outbox, closed for
// writing while bytes are queued (a node leaving): the peer reads them
// all, the last frame too, then EOF. TLS's close sets write deadlines
// that must not cut the queue short.
func TestOutboxTLSCloseWrite(t *testing.T) {
	ca := newTestCA(t, "outbox CA")
	a, b := tcpPair(t)
	o := newOutbox(a, 5*time.Second)
	client := tls.Client(o, &tls.Config{RootCAs: ca.pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
	server := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{*ca.issue(t, "peer")}, MinVersion: tls.VersionTLS13})
	done := make(chan error, 1)
	go func() { done <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	o.start()
	var want []byte
	for i := range 64 {
		p := bytes.Repeat([]byte{byte(i)}, 8192)
		if _, err := client.Write(p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		want = append(want, p...)
	}
	if _, err := client.Write([]byte("LEAVE")); err != nil {
		t.Fatal(err)
	}
	want = append(want, "LEAVE"...)
	client.CloseWrite()
	o.CloseWrite()
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatalf("after %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, want the %d written, then EOF", len(got), len(want))
	}
	waitGroupDone(t, o)
}

// TestOutboxDrain: drain waits for the queue (the last frame of a
// connection found silent), and gives up after its bound on a peer that
// does not read.
func TestOutboxDrain(t *testing.T) {
	a, b := tcpPair(t)
	o := newOutbox(a, 5*time.Second)
	o.start()
	writeAll(t, o, 64, 8192)
	t0 := time.Now()
	if o.drain(50 * time.Millisecond) {
		t.Fatal("drained to a peer that reads nothing")
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("drain took %v, bound 50ms", d)
	}
	go io.Copy(io.Discard, b)
	if !o.drain(5 * time.Second) {
		t.Fatal("not drained to a peer that reads")
	}
}
