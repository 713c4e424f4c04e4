package msc

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/core"
	"github.com/msc-go/msc/internal/relay"
)

// Tests of a node under attack: raw TCP clients that speak (or garble) the
// wire by hand. After each attack the node must still elect correctly.

// errLog records what a node reports to OnError.
type errLog struct {
	mu   sync.Mutex
	errs []error
}

func watchErrors(m *Msc) *errLog {
	l := &errLog{}
	m.OnError(func(err error) {
		l.mu.Lock()
		l.errs = append(l.errs, err)
		l.mu.Unlock()
	})
	return l
}

// peerErrors returns the reported *PeerError whose cause is target.
func (l *errLog) peerErrors(target error) []*PeerError {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*PeerError
	for _, err := range l.errs {
		var pe *PeerError
		if errors.As(err, &pe) && errors.Is(err, target) {
			out = append(out, pe)
		}
	}
	return out
}

// fromPeer returns the errors reported about the named peer.
func (l *errLog) fromPeer(name string) []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []error
	for _, err := range l.errs {
		var pe *PeerError
		if errors.As(err, &pe) && pe.Peer == name {
			out = append(out, err)
		}
	}
	return out
}

func (l *errLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, err := range l.errs {
		fmt.Fprintf(&b, "\n\t%v", err)
	}
	return b.String()
}

// flushCallbacks waits until the callbacks m has queued so far have run.
func flushCallbacks(t testing.TB, m *Msc) {
	t.Helper()
	done := make(chan struct{})
	m.disp.push(func() { close(done) })
	select {
	case <-done:
	case <-time.After(settle):
		t.Fatal("callbacks did not run")
	}
}

// inboundHandlers counts the goroutines, of every node in the process,
// that serve an inbound connection.
func inboundHandlers() int {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "created by github.com/msc-go/msc.(*Msc).acceptLoop")
}

// waitInbound waits until at most n inbound connections are being served
// in the process: the others have ended and been reported.
func waitInbound(t testing.TB, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("at most %d inbound connections", n), func() bool { return inboundHandlers() <= n })
}

// bgT lets helpers that call Fatal run on a goroutine of the test other
// than its own: Fatal marks the test failed and ends that goroutine only.
type bgT struct{ testing.TB }

func (b bgT) Fatal(args ...any) {
	b.TB.Helper()
	b.TB.Error(args...)
	runtime.Goexit()
}

func (b bgT) Fatalf(format string, args ...any) {
	b.TB.Helper()
	b.TB.Errorf(format, args...)
	runtime.Goexit()
}

// rawConn is a client of a node's listener that speaks the wire by hand.
type rawConn struct {
	t   testing.TB
	nc  net.Conn
	br  *bufio.Reader
	s   end // after handshake
	seq uint64
}

// dialRaw connects to m from 127.0.0.1, or from 127.0.0.<host> if host is
// not 0: OnError's rate limit is per host, so each host has its own budget.
func dialRaw(t testing.TB, m *Msc, host byte) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: settle}
	if host != 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, host)}
	}
	nc, err := d.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(settle))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) name() string { return r.nc.LocalAddr().String() }

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// readHello reads the node's hello and returns its nonce.
func (r *rawConn) readHello() []byte {
	r.t.Helper()
	f, _, err := readFrame(r.br, nil)
	if err != nil {
		r.t.Fatal("reading the node's hello:", err)
	}
	if f.typ != frameHello || len(f.body) != helloSize {
		r.t.Fatalf("node sent frame type %d of %d bytes, not a hello", f.typ, len(f.body))
	}
	return bytes.Clone(f.body[1:])
}

// handshake reads the node's hello and answers as the dialer, with suite s
// (which may use another key than the node).
func (r *rawConn) handshake(s *suite) {
	r.t.Helper()
	theirs := r.readHello()
	mine := make([]byte, nonceSize)
	rand.Read(mine)
	r.write(appendHello(nil, s.id, mine))
	r.s, _ = sessionEnds(r.t, s, mine, theirs)
}

// beatFrame returns a sealed heartbeat of uid with the next sequence
// number, UID in the header.
func (r *rawConn) beatFrame(uid string) []byte {
	b := &core.Beat{UID: uid, Start: base.Add(time.Hour).UnixNano(), Inc: 1, Version: 1}
	p, _ := encodeBeat(b, true)
	r.seq++
	return sealBeat(r.s.send, p, uid, r.seq, false)
}

// sealRaw seals an arbitrary payload as a heartbeat with sequence seq.
func (r *rawConn) sealRaw(seq uint64, uid string, payload []byte) []byte {
	buf := appendHeader(nil, frameHeartbeat, 0, seq, uid, len(payload)+r.s.send.overhead())
	return r.s.send.seal(buf, buf, payload, seq)
}

// waitClosed reads, discarding, until the node closes the connection, and
// returns how long that took since d0.
func (r *rawConn) waitClosed(d0 time.Time) time.Duration {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(settle))
	_, err := io.Copy(io.Discard, r.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatalf("node did not close the connection within %v", settle)
	}
	return time.Since(d0)
}

// targetCluster is a 2-node cluster, started, whose node 0 is attacked; it
// records node 0's errors.
func targetCluster(t *testing.T) (*testCluster, *errLog) {
	t.Helper()
	c := newCluster(t, 2, nil)
	errs := watchErrors(c.nodes[0])
	c.start()
	c.waitMaster(c.nodes[0])
	return c, errs
}

// checkElects asserts that the cluster still agrees on node 0 and takes a
// newly started node: node 1 restarts as a new process, older than node 0
// this time, then once more with its own start time.
func checkElects(t *testing.T, c *testCluster) {
	t.Helper()
	c.waitMaster(c.nodes[0])
	n1 := c.restart(1, func(o *Options) { o.StartTime = base.Add(-time.Hour) })
	c.waitMaster(n1)
	c.restart(1, func(o *Options) { o.StartTime = base.Add(time.Second) })
	c.waitMaster(c.nodes[0])
}

// TestHostileWrongKey: a client that completes the handshake but seals
// with another key is disconnected and reported once as ErrAuth; a flood
// of them is reported only a few times.
func TestHostileWrongKey(t *testing.T) {
	c, errs := targetCluster(t)
	n0 := c.nodes[0]
	wrong, err := newSuite("aes128", "not the passphrase")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	r := dialRaw(t, n0, 0)
	r.handshake(wrong)
	r.write(r.beatFrame("mallory"))
	r.waitClosed(t0)
	waitFor(t, "ErrAuth reported", func() bool { return len(errs.peerErrors(ErrAuth)) > 0 })
	if pe := errs.peerErrors(ErrAuth)[0]; pe.Peer != r.name() {
		t.Fatalf("ErrAuth about %q, want the client's address %q", pe.Peer, r.name())
	}

	// The flood: 100 more.
	for range 100 {
		r := dialRaw(t, n0, 0)
		r.handshake(wrong)
		r.write(r.beatFrame("mallory"))
		r.waitClosed(t0)
		r.nc.Close()
	}
	waitInbound(t, 2) // the cluster's own two connections
	flushCallbacks(t, n0)
	elapsed := time.Since(t0)
	got := len(errs.peerErrors(ErrAuth))
	limit := int(elapsed/errRateWindow) + 1
	t.Logf("101 wrong-key connections in %v: %d ErrAuth reports (at most %d allowed)", elapsed.Round(time.Millisecond), got, limit)
	if got > limit {
		t.Fatalf("%d ErrAuth reports for 101 connections in %v: not rate-limited:%v", got, elapsed, errs)
	}
	checkElects(t, c)
}

// attack is bytes a raw client sends, then what the node must report.
type attack struct {
	name      string
	handshake bool           // complete the handshake first (with the right key)
	send      func(*rawConn) // what to send
	closeW    bool           // then close our side
	want      error          // cause reported; nil: any, or none
	peer      string         // the peer named in the report, if not the client's address
}

// TestHostileGarbage sends malformed input before and after the handshake.
// Each case comes from its own loopback address so that each has its own
// OnError budget.
func TestHostileGarbage(t *testing.T) {
	right, _ := newSuite("aes128", "test passphrase")
	nonce := bytes.Repeat([]byte{7}, nonceSize)
	hello := appendHello(nil, right.id, nonce)
	badVersion := appendHello(nil, right.id, nonce)
	badVersion[4] = wireVersion + 1
	rnd := mrand.New(mrand.NewPCG(1, 2))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	random[0] = 0x7f // a length over MaxFrameSize
	short := appendHeader(nil, frameHello, 0, 0, "", helloSize-1)
	short = append(short, hello[headerSize:len(hello)-1]...)
	valid := func(r *rawConn) []byte { return r.beatFrame("node9") }

	attacks := []attack{
		{name: "HTTP request", send: func(r *rawConn) { r.write([]byte("GET / HTTP/1.1\r\nHost: msc\r\n\r\n")) }, want: ErrFrameTooLarge},
		{name: "random bytes", send: func(r *rawConn) { r.write(random) }, want: ErrFrameTooLarge},
		{name: "length 4 GiB", send: func(r *rawConn) { r.write(frameBytes(0xffffffff, wireVersion)) }, want: ErrFrameTooLarge},
		{name: "length MaxFrameSize+1", send: func(r *rawConn) { r.write(frameBytes(MaxFrameSize+1, wireVersion)) }, want: ErrFrameTooLarge},
		{name: "hello of the next version", send: func(r *rawConn) { r.write(badVersion) }, want: ErrVersion},
		{name: "length 3", send: func(r *rawConn) { r.write(frameBytes(3, wireVersion, 1, 0)) }, want: ErrBadFrame},
		{name: "short hello", send: func(r *rawConn) { r.write(short) }, want: ErrBadFrame},
		{name: "heartbeat for a hello", send: func(r *rawConn) {
			r.write(appendHeader(nil, frameHeartbeat, 0, 0, "", helloSize))
			r.write(make([]byte, helloSize))
		}, want: ErrBadFrame},
		{name: "hello of aes256", send: func(r *rawConn) { r.write(appendHello(nil, algIDs["aes256"], nonce)) }, want: ErrAlgorithmMismatch},
		{name: "truncated hello, then close", send: func(r *rawConn) { r.write(hello[:20]) }, closeW: true},

		{name: "second hello", handshake: true, send: func(r *rawConn) { r.write(hello) }, want: ErrBadFrame},
		{name: "unknown frame type", handshake: true, send: func(r *rawConn) {
			f := valid(r)
			f[5] = 9
			r.write(f)
		}, want: ErrBadFrame},
		{name: "sequence 0", handshake: true, send: func(r *rawConn) {
			p, _ := encodeBeat(testBeat(0), false)
			r.write(r.sealRaw(0, "node9", p[uidPrefixLen("node0"):]))
		}, want: ErrAuth},
		{name: "sequence 2 first", handshake: true, send: func(r *rawConn) {
			r.seq = 1
			r.write(valid(r))
		}, want: ErrAuth},
		{name: "unsealed heartbeat", handshake: true, send: func(r *rawConn) {
			p, _ := encodeBeat(testBeat(0), false)
			p = append(p[uidPrefixLen("node0"):], make([]byte, 16)...)
			r.write(appendHeader(nil, frameHeartbeat, 0, 1, "node9", len(p)))
			r.write(p)
		}, want: ErrAuth},
		{name: "sealed garbage", handshake: true, send: func(r *rawConn) {
			r.write(r.sealRaw(1, "node9", []byte("not a heartbeat")))
		}, want: ErrBadFrame},
		{name: "sealed heartbeat without UID", handshake: true, send: func(r *rawConn) {
			p, _ := encodeBeat(testBeat(0), false)
			r.write(r.sealRaw(1, "", p[uidPrefixLen("node0"):]))
		}, want: ErrBadFrame},
		{name: "heartbeat of the next version", handshake: true, send: func(r *rawConn) {
			f := valid(r)
			f[4] = wireVersion + 1
			r.write(f)
		}, want: ErrVersion},
		{name: "heartbeat of 4 GiB", handshake: true, send: func(r *rawConn) { r.write(frameBytes(0xffffffff, wireVersion)) }, want: ErrFrameTooLarge},
		{name: "heartbeat of length 5", handshake: true, send: func(r *rawConn) { r.write(frameBytes(5, wireVersion, 1, 0, 0, 0)) }, want: ErrBadFrame},
		{name: "truncated heartbeat, then close", handshake: true, send: func(r *rawConn) { r.write(valid(r)[:30]) }, closeW: true},
		{name: "half a length, then close", handshake: true, send: func(r *rawConn) { r.write([]byte{0, 0}) }, closeW: true},
		{name: "valid heartbeat, then truncated, then close", handshake: true, send: func(r *rawConn) {
			r.write(valid(r))
			r.write(valid(r)[:40])
		}, closeW: true},
	}
	c, errs := targetCluster(t)
	n0 := c.nodes[0]
	for i, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			t0 := time.Now()
			r := dialRaw(t, n0, byte(10+i))
			if a.handshake {
				r.handshake(right)
			} else {
				r.readHello()
			}
			a.send(r)
			if a.closeW {
				r.nc.(*net.TCPConn).CloseWrite()
			}
			d := r.waitClosed(t0)
			if a.want != nil {
				waitFor(t, fmt.Sprintf("%v reported", a.want), func() bool { return len(errs.fromPeer(r.name())) > 0 })
				got := errs.fromPeer(r.name())
				if len(got) != 1 || !errors.Is(got[0], a.want) {
					t.Fatalf("reported %v, want one %v", got, a.want)
				}
				if errors.Is(got[0], ErrPeerSilent) {
					t.Fatalf("closed for silence after %v, not for the bad input", d)
				}
			} else {
				waitInbound(t, 2)
				flushCallbacks(t, n0)
				t.Logf("closed after %v; reported %v", d.Round(time.Millisecond), errs.fromPeer(r.name()))
			}
			if !c.agreed(n0) {
				t.Fatalf("cluster disagrees after the attack:\n%s", c.describe())
			}
		})
	}
	checkElects(t, c)
}

// TestHostileSilent: clients that connect and stall, at several points of
// the protocol, are closed after WaitTimeout and reported as ErrPeerSilent.
func TestHostileSilent(t *testing.T) {
	right, _ := newSuite("aes128", "test passphrase")
	attacks := []attack{
		{name: "nothing", send: func(*rawConn) {}},
		{name: "half a length", send: func(r *rawConn) { r.write([]byte{0, 0}) }},
		{name: "half a header", send: func(r *rawConn) { r.write(appendHello(nil, right.id, make([]byte, nonceSize))[:9]) }},
		{name: "hello without its nonce", send: func(r *rawConn) { r.write(appendHello(nil, right.id, make([]byte, nonceSize))[:20]) }},
		{name: "handshake, then nothing", handshake: true, send: func(*rawConn) {}},
		{name: "handshake, then half a header", handshake: true, send: func(r *rawConn) { r.write(r.beatFrame("node9")[:10]) }},
		{name: "handshake, one heartbeat, then nothing", handshake: true, send: func(r *rawConn) { r.write(r.beatFrame("node9")) }, peer: "node9"},
	}
	c, errs := targetCluster(t)
	n0 := c.nodes[0]
	// All at once: each takes WaitTimeout or less.
	type result struct {
		name string
		d    time.Duration
	}
	results := make([]result, len(attacks))
	var wg sync.WaitGroup
	for i, a := range attacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			r := dialRaw(bgT{t}, n0, byte(10+i))
			if a.handshake {
				r.handshake(right)
			} else {
				r.readHello()
			}
			a.send(r)
			name := r.name()
			if a.peer != "" {
				name = a.peer
			}
			results[i] = result{name, r.waitClosed(t0)}
		}()
	}
	wg.Wait()
	waitInbound(t, 2)
	flushCallbacks(t, n0)
	for i, a := range attacks {
		res := results[i]
		t.Logf("%s: closed after %v", a.name, res.d.Round(time.Millisecond))
		// The handshake has WaitTimeout; then a connection silent for
		// (WaitTimeout+Interval)/2 is closed, to be dialed again.
		limit := testWait
		if a.handshake {
			limit = silentAfter(testInterval, testWait)
		}
		if res.d < limit-5*time.Millisecond {
			t.Errorf("%s: closed after %v, before %v", a.name, res.d, limit)
		}
		got := errs.fromPeer(res.name)
		if len(got) != 1 || !errors.Is(got[0], ErrPeerSilent) {
			t.Errorf("%s: reported %v, want one ErrPeerSilent", a.name, got)
		}
	}
	if t.Failed() {
		t.Logf("all errors:%v", errs)
	}
	checkElects(t, c)
}

// TestFrameBegunLateNotSilent: a frame whose first bytes come just before
// the connection would count as silent, and the rest some milliseconds
// later (a peer whose flusher waits for a CPU), is read whole: the
// connection stays up. Before, the rest had what was left of the silence
// deadline, and the connection was closed as silent in mid-frame.
func TestFrameBegunLateNotSilent(t *testing.T) {
	right, _ := newSuite("aes128", "test passphrase")
	c, errs := targetCluster(t)
	n0 := c.nodes[0]
	r := dialRaw(t, n0, 0)
	r.handshake(right)
	// The node's reader waits for the next frame from when it took this
	// one: the silence deadline is silentAfter after about t0.
	r.write(r.beatFrame("node9"))
	t0 := time.Now()
	next := r.beatFrame("node9")
	silence := silentAfter(testInterval, testWait)
	time.Sleep(silence - 5*time.Millisecond) // the fault: bytes held back
	r.write(next[:10])
	time.Sleep(60 * time.Millisecond) // the rest, past the old deadline
	r.write(next[10:])
	late := time.Since(t0)
	// Read what the node sends for 100 ms (less than a silence): its
	// heartbeats, not a close.
	r.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	frames := 0
	for {
		f, _, err := readFrame(r.br, nil)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("the node closed the connection (%v) after a frame completed %v after the last, %v after it began", err, late.Round(time.Millisecond), 60*time.Millisecond)
			}
			break
		}
		if f.typ == frameHeartbeat {
			frames++
		}
	}
	flushCallbacks(t, n0)
	for _, name := range []string{r.name(), "node9"} {
		for _, err := range errs.fromPeer(name) {
			if errors.Is(err, ErrPeerSilent) {
				t.Fatalf("reported %v", err)
			}
		}
	}
	if frames == 0 {
		t.Fatal("no heartbeat from the node in 100 ms")
	}
	t.Logf("the frame completed %v after the one before; %d heartbeats read after it", late.Round(time.Millisecond), frames)
}

// TestHostileIdleConnections holds 250 idle connections to the master of a
// 3-node cluster, re-dialing each as soon as the node closes it, while the
// cluster keeps its master and moves a key's mastership.
func TestHostileIdleConnections(t *testing.T) {
	const idle = 1000
	c := newCluster(t, 3, func(i int, o *Options) {
		if i > 0 {
			o.Keys = []string{"k"}
		}
	})
	errs := watchErrors(c.nodes[0])
	c.start()
	n0, n1, n2 := c.nodes[0], c.nodes[1], c.nodes[2]
	keyMaster := func(want *Msc) bool {
		for _, m := range []*Msc{n1, n2} {
			if uid, ok := m.MasterByKey("k"); !ok || uid != want.UID() || m.IsMasterByKey("k") != (m == want) {
				return false
			}
		}
		return n0.IsMasterByKey("k") == (want == n0)
	}
	c.waitMaster(n0)
	waitFor(t, "n1 master of k", func() bool { return keyMaster(n1) })

	var (
		mu      sync.Mutex
		live    = make(map[net.Conn]bool)
		stopped bool
		closed  atomic.Int64
		dials   atomic.Int64
		wg      sync.WaitGroup
	)
	stopIdle := func() {
		mu.Lock()
		stopped = true
		for nc := range live {
			nc.Close()
		}
		mu.Unlock()
	}
	defer stopIdle()
	addr := n0.Addr().String()
	for range idle {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				nc, err := net.DialTimeout("tcp", addr, settle)
				if err != nil {
					return
				}
				mu.Lock()
				if stopped {
					mu.Unlock()
					nc.Close()
					return
				}
				live[nc] = true
				mu.Unlock()
				dials.Add(1)
				io.Copy(io.Discard, nc) // until the node closes it
				nc.Close()
				mu.Lock()
				delete(live, nc)
				s := stopped
				mu.Unlock()
				if s {
					return
				}
				closed.Add(1)
			}
		}()
	}
	t0 := time.Now()
	// Sample agreement all along.
	var bad atomic.Value
	stopSampling := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
			}
			if !c.agreed(n0) {
				bad.Store(c.describe())
			}
		}
	}()
	waitFor(t, fmt.Sprintf("%d idle connections", idle), func() bool { return dials.Load() >= idle })
	n0.AddKey("k")
	waitFor(t, "n0 master of k", func() bool { return keyMaster(n0) })
	n0.RemoveKey("k")
	waitFor(t, "n1 master of k again", func() bool { return keyMaster(n1) })
	// Every idle connection was closed by the node at least once.
	waitFor(t, "idle connections closed by the node", func() bool { return closed.Load() >= idle })
	close(stopSampling)
	stopIdle()
	wg.Wait()
	elapsed := time.Since(t0)
	if s, ok := bad.Load().(string); ok {
		t.Fatalf("the cluster disagreed during the flood:\n%s", s)
	}
	waitInbound(t, 6)
	flushCallbacks(t, n0)
	silent := len(errs.peerErrors(ErrPeerSilent))
	t.Logf("%d dials in %v, %d closed by the node; %d ErrPeerSilent reports", dials.Load(), elapsed.Round(time.Millisecond), closed.Load(), silent)
	if silent > int(elapsed/errRateWindow)+1 {
		t.Fatalf("%d ErrPeerSilent reports in %v: not rate-limited", silent, elapsed)
	}
	c.waitMaster(n0)
}

// TestHostileDuplicateUID: a node started with the UID of a running node
// is reported as ErrDuplicateUID by the node whose UID it took; the
// cluster keeps its master.
func TestHostileDuplicateUID(t *testing.T) {
	c := newCluster(t, 3, nil)
	errs := watchErrors(c.nodes[1])
	c.start()
	c.waitMaster(c.nodes[0])

	o := testOptions(1) // same UID and start time as node 1: a copied config
	o.Listener = listen(t)
	twin, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	twinErrs := watchErrors(twin)
	if err := twin.AddServer("1", ServerConfig{Port: port(c.lns[1])}); err != nil {
		t.Fatal(err)
	}
	if err := twin.Start(); err != nil {
		t.Fatal(err)
	}
	defer twin.Stop()
	waitFor(t, "ErrDuplicateUID reported", func() bool { return len(errs.peerErrors(ErrDuplicateUID)) > 0 })
	waitFor(t, "ErrDuplicateUID reported by the twin", func() bool { return len(twinErrs.peerErrors(ErrDuplicateUID)) > 0 })
	t.Logf("node1 reported %v", errs.peerErrors(ErrDuplicateUID)[0])
	if !c.agreed(c.nodes[0]) {
		t.Fatalf("cluster disagrees with a duplicate about:\n%s", c.describe())
	}
	if st := c.nodes[1].Status(); len(st.Peers) != 2 {
		t.Fatalf("node1 counts the twin as a peer: %+v", st.Peers)
	}
	twin.Stop()
	checkElects(t, c)
}

// mitm reads, frame by frame, the first connection that crosses a relay
// (node 1 dialing node 0), and lets a test rewrite the dialer's frames.
// Later connections are relayed as they are.
type mitm struct {
	// tamper gets the dialer's frame i (0: its hello) and returns what to
	// send in its place.
	tamper func(i int, f []byte, m *mitm) [][]byte

	mu          sync.Mutex
	fromDialer  [][]byte // frames of the first connection, as the dialer sent them
	fromNode    [][]byte // frames of the first connection, as the listener sent them
	sent        []byte   // bytes sent to the listener on the first connection
	tampered    bool
	nodeFrameCh chan struct{} // cap 1: a frame arrived from the listener
}

// newMITM makes r's first connection go through a mitm.
func newMITM(r *relay.Relay, tamper func(int, []byte, *mitm) [][]byte) *mitm {
	m := &mitm{tamper: tamper, nodeFrameCh: make(chan struct{}, 1)}
	r.SetFilter(func(conn int, d relay.Dir, src io.Reader) io.Reader {
		switch {
		case conn > 0:
			return src
		case d == relay.Up:
			return &frames{br: bufio.NewReader(src), each: m.dialerSent}
		default:
			return &frames{br: bufio.NewReader(src), each: m.nodeSent}
		}
	})
	return m
}

// dialerSent keeps the dialer's frame i and returns what tamper says.
func (m *mitm) dialerSent(i int, f []byte) [][]byte {
	m.mu.Lock()
	m.fromDialer = append(m.fromDialer, f)
	m.mu.Unlock()
	out := m.tamper(i, f, m)
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(out) != 1 || !bytes.Equal(out[0], f) {
		m.tampered = true
	}
	for _, o := range out {
		m.sent = append(m.sent, o...)
	}
	return out
}

// nodeSent keeps the listener's frame and relays it.
func (m *mitm) nodeSent(_ int, f []byte) [][]byte {
	m.mu.Lock()
	m.fromNode = append(m.fromNode, f)
	m.mu.Unlock()
	select {
	case m.nodeFrameCh <- struct{}{}:
	default:
	}
	return [][]byte{f}
}

// frames reads a stream frame by frame, and yields what each makes of
// frame i, in its place.
type frames struct {
	br   *bufio.Reader
	each func(i int, f []byte) [][]byte
	i    int
	out  []byte
}

func (r *frames) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		_, buf, err := readFrame(r.br, nil)
		if err != nil {
			return 0, err
		}
		for _, o := range r.each(r.i, bytes.Clone(buf)) {
			r.out = append(r.out, o...)
		}
		r.i++
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// nodeFrame waits for the listener's frame with sequence number seq.
func (m *mitm) nodeFrame(seq uint64) []byte {
	deadline := time.After(settle)
	for {
		m.mu.Lock()
		for _, f := range m.fromNode {
			if binary.BigEndian.Uint64(f[7:]) == seq && f[5] == frameHeartbeat {
				m.mu.Unlock()
				return f
			}
		}
		m.mu.Unlock()
		select {
		case <-m.nodeFrameCh:
		case <-deadline:
			return nil
		}
	}
}

func (m *mitm) dialerFrame(i int) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fromDialer[i]
}

func setSeq(f []byte, seq uint64) []byte {
	f = bytes.Clone(f)
	binary.BigEndian.PutUint64(f[7:], seq)
	return f
}

// TestHostileReplay rewrites the heartbeats of a live connection between
// two nodes (node 1 dials node 0 through a relay): replayed, duplicated,
// reordered, renumbered, corrupted or reflected frames must close the
// connection with ErrAuth; the nodes then reconnect and agree again. The
// bytes recorded on that connection, replayed on a new one, are refused
// too.
func TestHostileReplay(t *testing.T) {
	const at = 4 // the dialer's frame to tamper with (0 is its hello)
	pass := func(i int, f []byte) [][]byte { return [][]byte{f} }
	var held []byte
	cases := []struct {
		name   string
		tamper func(i int, f []byte, m *mitm) [][]byte
	}{
		{"replay an earlier frame", func(i int, f []byte, m *mitm) [][]byte {
			if i == at {
				return [][]byte{m.dialerFrame(2)}
			}
			return pass(i, f)
		}},
		{"duplicate a frame", func(i int, f []byte, m *mitm) [][]byte {
			if i == at {
				return [][]byte{f, f}
			}
			return pass(i, f)
		}},
		{"swap two frames", func(i int, f []byte, m *mitm) [][]byte {
			switch i {
			case at:
				held = f
				return nil
			case at + 1:
				return [][]byte{f, held}
			}
			return pass(i, f)
		}},
		{"drop a frame", func(i int, f []byte, m *mitm) [][]byte {
			if i == at {
				return nil
			}
			return pass(i, f)
		}},
		{"replay with the expected sequence number", func(i int, f []byte, m *mitm) [][]byte {
			if i == at {
				return [][]byte{setSeq(m.dialerFrame(2), at)}
			}
			return pass(i, f)
		}},
		{"flip a bit of the tag", func(i int, f []byte, m *mitm) [][]byte {
			if i == at {
				f = bytes.Clone(f)
				f[len(f)-1] ^= 1
				return [][]byte{f}
			}
			return pass(i, f)
		}},
		{"reflect the listener's frame", func(i int, f []byte, m *mitm) [][]byte {
			if i == at {
				if r := m.nodeFrame(at); r != nil {
					return [][]byte{r} // same sequence number, other direction
				}
			}
			return pass(i, f)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, rl := relayedPair(t, nil)
			n0 := c.nodes[0]
			errs := watchErrors(n0)
			m := newMITM(rl, tc.tamper)
			c.start()
			waitFor(t, "ErrAuth from node1", func() bool { return len(errs.peerErrors(ErrAuth)) > 0 })
			pe := errs.peerErrors(ErrAuth)[0]
			if pe.Peer != "node1" {
				t.Fatalf("ErrAuth about %q, want node1", pe.Peer)
			}
			m.mu.Lock()
			tampered := m.tampered
			m.mu.Unlock()
			if !tampered {
				t.Fatal("the relay did not tamper, yet the node reported ErrAuth")
			}
			t.Logf("reported: %v", pe)
			// The nodes reconnect (the relay passes later connections
			// through) and agree.
			waitFor(t, "a new connection", func() bool { return rl.Accepted() >= 2 })
			c.waitMaster(n0)
			waitFor(t, "node0 sees node1", func() bool {
				st := n0.Status()
				return len(st.Peers) == 1 && st.Peers[0].Live
			})

			// Replay what the dialer sent on the recorded connection, on a
			// new one: the listener's new nonce makes a new session key.
			m.mu.Lock()
			recorded := bytes.Clone(m.sent)
			m.mu.Unlock()
			r := dialRaw(t, n0, 0)
			r.write(recorded)
			r.waitClosed(time.Now())
			waitFor(t, "ErrAuth about the replaying client", func() bool {
				return len(errs.fromPeer(r.name())) > 0
			})
			if got := errs.fromPeer(r.name()); !errors.Is(got[0], ErrAuth) {
				t.Fatalf("replayed connection: %v, want ErrAuth", got)
			}
			if st := n0.Status(); len(st.Peers) != 1 || st.Peers[0].Conns != 1 {
				t.Fatalf("node0 after the replay: %+v", st.Peers)
			}
			c.waitMaster(n0)
		})
	}
}

// TestHostileMisconfiguredPeer: node 1 dials node 0 with another key, or
// another algorithm, than node 0 listens with; node 0 dials node 1
// correctly. Both ends of the bad connection report the fault, at most
// once a second however often node 1 redials, and the pair stays live
// over the good connection.
func TestHostileMisconfiguredPeer(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
		want error
	}{
		{"key", ServerConfig{Key: "not the passphrase"}, ErrAuth},
		{"algorithm", ServerConfig{Algorithm: "aes256"}, ErrAlgorithmMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := buildCluster(&testCluster{t: t, server: func(i, j int, sc *ServerConfig) {
				if i == 1 { // node 1 dials node 0 with tc.cfg
					bad := tc.cfg
					bad.Port = sc.Port
					*sc = bad
				}
			}}, 2, nil, false)
			n0, n1 := c.nodes[0], c.nodes[1]
			e0, e1 := watchErrors(n0), watchErrors(n1)
			t0 := time.Now()
			c.start()
			c.waitMaster(n0)
			// Node 1 redials every few hundred milliseconds; wait for its
			// second report, a second or more later.
			waitFor(t, "two reports from node1", func() bool { return len(e1.peerErrors(tc.want)) >= 2 })
			if !c.agreed(n0) {
				t.Fatalf("the pair disagrees:\n%s", c.describe())
			}
			flushCallbacks(t, n0)
			flushCallbacks(t, n1)
			elapsed := time.Since(t0)
			limit := int(elapsed/errRateWindow) + 1
			r0, r1 := e0.peerErrors(tc.want), e1.peerErrors(tc.want)
			t.Logf("%v: node0 reported %d, node1 %d (limit %d)", elapsed.Round(time.Millisecond), len(r0), len(r1), limit)
			if len(r0) == 0 || len(r0) > limit || len(r1) > limit {
				t.Fatalf("reports: node0 %d, node1 %d, limit %d:%v\n%v", len(r0), len(r1), limit, e0, e1)
			}
			if r1[0].Peer != "0" {
				t.Fatalf("node1 names the peer %q, want its server id 0", r1[0].Peer)
			}
			if st := n0.Status(); len(st.Peers) != 1 || !st.Peers[0].Live || st.Peers[0].Conns != 1 {
				t.Fatalf("node0's view of node1: %+v", st.Peers)
			}
		})
	}
}

// TestMaxInboundLimit fills a node's inbound slots with idle connections
// that never speak: one slot is node 1's connection, MaxInbound-1 are
// idle; the next inbound connection is closed at once and reported as
// errTooManyInbound. Meanwhile the election is unaffected: the two nodes
// keep hearing each other and agree on node 0. Once the idle connections
// close, a new inbound connection is served again.
func TestMaxInboundLimit(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) {
		// Idle connections are closed after WaitTimeout (the handshake
		// deadline): long enough to fill every slot first.
		o.WaitTimeout = 20 * time.Second
	})
	errs := watchErrors(c.nodes[0])
	c.start()
	c.waitMaster(c.nodes[0])
	n0, n1 := c.nodes[0], c.nodes[1]
	waitFor(t, "node1's connection to node0 is up", func() bool {
		for _, p := range n0.Status().Peers {
			if p.UID == "node1" && p.Live && p.Conns == 1 {
				return true
			}
		}
		return false
	})
	addr := n0.Addr().String()
	var idle []net.Conn
	closeIdle := func() {
		for _, nc := range idle {
			nc.Close()
		}
		idle = nil
	}
	defer closeIdle()
	// served reports whether the node serves nc: it sends its hello at
	// once, where a connection over the limit is closed without a byte.
	served := func(nc net.Conn) bool {
		t.Helper()
		nc.SetReadDeadline(time.Now().Add(settle))
		var b [1]byte
		_, err := nc.Read(b[:])
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Fatalf("reading from the node: %v", err)
		}
		return err == nil
	}
	dial := func() net.Conn {
		t.Helper()
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return nc
	}
	t0 := time.Now()
	// One connection per pair, dialed by the smaller UID: node0's to
	// node1 is its own, so every inbound slot is free.
	for i := range MaxInbound {
		nc := dial()
		idle = append(idle, nc)
		if !served(nc) {
			t.Fatalf("inbound connection %d of %d closed at once", i+1, MaxInbound)
		}
	}
	over := dial()
	if served(over) {
		t.Fatalf("inbound connection %d served, over MaxInbound = %d", MaxInbound+1, MaxInbound)
	}
	over.Close()
	t.Logf("%d inbound connections opened in %v", MaxInbound, time.Since(t0).Round(time.Millisecond))
	waitFor(t, "the refused connection reported", func() bool {
		pes := errs.peerErrors(errTooManyInbound)
		return len(pes) > 0 && pes[0].Peer != ""
	})
	// The election goes on: both nodes hear each other after the flood.
	full := time.Now()
	waitFor(t, "heartbeats after the flood", func() bool {
		return heardAfter(n0, "node1", full) && heardAfter(n1, "node0", full) && c.agreed(n0)
	})
	closeIdle()
	waitFor(t, "a new inbound connection served again", func() bool {
		nc := dial()
		defer nc.Close()
		return served(nc)
	})
	if !c.agreed(n0) {
		t.Fatalf("election changed:\n%s", c.describe())
	}
}

func heardAfter(m *Msc, uid string, t time.Time) bool {
	for _, p := range m.Status().Peers {
		if p.UID == uid {
			return p.Live && p.LastHeard.After(t)
		}
	}
	return false
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
