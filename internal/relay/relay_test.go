package relay

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// echo is a target that sends back each line it reads, prefixed with
// its name.
func echo(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, name+":"+line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func start(t *testing.T, target string) *Relay {
	t.Helper()
	r, err := Listen(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, r *Relay) *client {
	t.Helper()
	c, err := net.Dial("tcp", r.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, br: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) recv() (string, error) {
	s, err := c.br.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

func (c *client) want(s string) {
	c.t.Helper()
	got, err := c.recv()
	if err != nil || got != s {
		c.t.Fatalf("read %q, %v; want %q", got, err, s)
	}
}

// nothingFor fails if c receives a byte within d.
func (c *client) nothingFor(d time.Duration) {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(d))
	if got, err := c.recv(); !isTimeout(err) {
		c.t.Fatalf("read %q, %v while held", got, err)
	}
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestForwardsAndHalfCloses(t *testing.T) {
	r := start(t, echo(t, "a"))
	c := dial(t, r)
	c.send("hello")
	c.want("a:hello")
	c.send("again")
	c.want("a:again")
	c.c.(*net.TCPConn).CloseWrite() // the target sees EOF and closes: so do we
	if got, err := c.recv(); err != io.EOF {
		t.Fatalf("after half-close: %q, %v; want EOF", got, err)
	}
	if n := r.Accepted(); n != 1 {
		t.Fatalf("Accepted() = %d, want 1", n)
	}
}

func TestHoldOneDirection(t *testing.T) {
	for _, d := range []Dir{Up, Down} {
		r := start(t, echo(t, "a"))
		c := dial(t, r)
		c.send("before")
		c.want("a:before")
		r.Hold(d, true)
		c.send("held")
		c.nothingFor(100 * time.Millisecond)
		r.Hold(d, false)
		c.want("a:held") // nothing lost
	}
}

func TestHoldHangsNewConnections(t *testing.T) {
	r := start(t, echo(t, "a"))
	r.Hold(Down, true)
	c := dial(t, r)
	c.send("x")
	c.nothingFor(100 * time.Millisecond)
	r.Hold(Down, false)
	c.want("a:x")
}

func TestCutResetsAndRefuses(t *testing.T) {
	r := start(t, echo(t, "a"))
	c := dial(t, r)
	c.send("x")
	c.want("a:x")
	r.Cut(true)
	if got, err := c.recv(); err == nil {
		t.Fatalf("read %q on a cut link", got)
	}
	// A connection made while cut is reset: at once, or, if the reset
	// beats the handshake's end, as it is dialed.
	if nc, err := net.Dial("tcp", r.Addr().String()); err == nil {
		c2 := &client{t: t, c: nc, br: bufio.NewReader(nc)}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		if got, err := c2.recv(); err == nil {
			t.Fatalf("read %q on a connection made while cut", got)
		}
	}
	r.Cut(false)
	c3 := dial(t, r)
	c3.send("y")
	c3.want("a:y")
}

func TestDelay(t *testing.T) {
	const delay = 80 * time.Millisecond
	r := start(t, echo(t, "a"))
	c := dial(t, r)
	r.Delay(Up, delay)
	t0 := time.Now()
	c.send("1")
	c.send("2")
	c.want("a:1")
	c.want("a:2")
	if d := time.Since(t0); d < delay {
		t.Fatalf("answered after %v, before the delay of %v", d, delay)
	}
	r.Delay(Up, 0)
	c.send("3")
	c.want("a:3")
}

func TestFilterAndSetTarget(t *testing.T) {
	r := start(t, echo(t, "a"))
	var seen lockedBuffer
	r.SetFilter(func(conn int, d Dir, src io.Reader) io.Reader {
		switch {
		case conn == 0 && d == Up:
			return &upper{src}
		case conn == 0 && d == Down:
			return io.TeeReader(src, &seen)
		}
		return src
	})
	c := dial(t, r)
	c.send("quiet")
	c.want("a:QUIET")
	c.c.Close()

	r.SetTarget(echo(t, "b"))
	c2 := dial(t, r) // connection 1: as it is, to the new target
	c2.send("quiet")
	c2.want("b:quiet")
	if seen.String() != "a:QUIET\n" {
		t.Fatalf("the filter saw %q", seen.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type upper struct{ r io.Reader }

func (u *upper) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	copy(p, bytes.ToUpper(p[:n]))
	return n, err
}

func TestCloseEndsConnections(t *testing.T) {
	r := start(t, echo(t, "a"))
	r.Hold(Up, true)
	c := dial(t, r)
	c.send("x")
	r.Close() // waits for every goroutine, held ones too
	if got, err := c.recv(); err == nil {
		t.Fatalf("read %q after Close", got)
	}
	r.Close()
}
