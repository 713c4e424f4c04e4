package msc

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// conn is one authenticated TCP connection to a peer, dialed by this node
// (server != "") or accepted by it. Both ends send heartbeats on it.
//
// Goroutines: serve runs the handshake and the read loop in the goroutine
// that called it (the accept loop's handler or the client's loop). There
// is no writer goroutine: the elector sends the heartbeat on every
// connection in its own step, through the outbox, which never blocks and
// owns a flusher goroutine only while a peer's socket buffer is full;
// serve waits for it before returning. ctx done closes the socket; the
// read loop then ends.
type conn struct {
	m      *Msc
	id     core.ConnID
	nc     net.Conn        // what the read loop reads and sendBeat writes; set up by handshake
	raw    net.Conn        // the socket under nc
	out    *outbox         // the socket's sending side, under nc; close closes it
	ctx    context.Context // done: close the connection (Stop, RemoveServer)
	server string          // configured server id; "" for an inbound connection
	tag    uint64          // from the dialer's handshake nonce: the same at both ends
	suite  *suite
	name   string // peer name for errors: server id, then UID once known

	// With Options.TLS: the config to dial with (nil for an inbound
	// connection), and the subject of the peer's certificate and when the
	// handshake got it (mono), set by the handshake.
	tlsConf     *tls.Config
	certSubject string
	certAt      int64

	// setUp, if set, is called once the handshake has ended, whatever
	// its outcome (the client's dial token).
	setUp func()

	send, recv *sealer
	recvSeq    uint64

	// wmu guards the sending side: w and the writes on nc, which the
	// elector and serve (the first and last frames) make.
	wmu sync.Mutex
	w   writer

	// echo is what this end sends back to the peer in each frame: the
	// send time of the peer's newest frame the core has processed. The
	// elector sets it.
	echo atomic.Int64
	// reply: the next frame answers a claimant's frame (beatReply).
	reply atomic.Bool
	// linked: the core knows which peer this connection leads to; its
	// frames say so (beatLinked).
	linked atomic.Bool
	// askNamed: this end, a member, asks the voter for only the entries
	// of its table that name it (flagNamedOnly; the elector sets it);
	// peerNamed: the peer's last frame asked so (the read loop sets it).
	askNamed, peerNamed atomic.Bool

	// lastRead is when (mono) the read loop last read a frame it did not
	// hand to the elector (nothing new); synced is what the elector took
	// of it (elector only).
	lastRead atomic.Int64
	synced   int64

	// Read loop only (and the client, once the read loop has ended).
	filter   beatFilter
	peerName string // the peer's UID, as c.name gives it
}

func newConn(m *Msc, nc net.Conn, ctx context.Context, server string, s *suite) *conn {
	out := newOutbox(nc, m.cfg.WaitTimeout)
	c := &conn{
		m: m, id: core.ConnID(m.connSeq.Add(1)), nc: out, raw: nc, out: out, ctx: ctx, server: server, suite: s,
		w: newWriter(),
	}
	c.filter.keys.lists = &m.keyLists
	c.name = server
	if c.name == "" {
		c.name = nc.RemoteAddr().String()
	}
	return c
}

// close closes the socket; any goroutine may call it, any number of
// times.
func (c *conn) close() { c.out.Close() }

// The conn is a link of the elector.

func (c *conn) linkID() core.ConnID { return c.id }
func (c *conn) linkServer() string  { return c.server }
func (c *conn) linkTag() uint64     { return c.tag }
func (c *conn) setEcho(echo int64)  { c.echo.Store(echo) }
func (c *conn) setLinked()          { c.linked.Store(true) }
func (c *conn) setReply()           { c.reply.Store(true) }
func (c *conn) setNamedOnly(on bool) (was bool) {
	if was = c.askNamed.Load(); was != on {
		c.askNamed.Store(on)
	}
	return was
}
func (c *conn) namedOnly() bool { return c.peerNamed.Load() }
func (c *conn) takeHeard() (int64, bool) {
	r := c.lastRead.Load()
	if r <= c.synced {
		return 0, false
	}
	c.synced = r
	return r, true
}

// serve runs the connection until it ends, and reports why. heard is
// true if at least one valid heartbeat arrived.
func (c *conn) serve() (heard bool, err error) {
	defer func() {
		c.close()
		c.out.wg.Wait() // the flusher, if any, ends with the socket
	}()
	// Stop or RemoveServer closes the connection, whatever it is doing;
	// serve does not return while that close runs, so no goroutine of the
	// node outlives Stop.
	closing := make(chan struct{})
	stop := context.AfterFunc(c.ctx, func() {
		defer close(closing)
		c.close()
	})
	defer func() {
		if !stop() {
			<-closing
		}
	}()
	err = c.handshake()
	if c.setUp != nil {
		c.setUp()
	}
	if err != nil {
		return false, err
	}
	c.out.start()
	c.m.elect(event{kind: evUp, l: c})
	// The first heartbeat goes out before this end reads anything: if the
	// peer's first frame fails to open here, the peer still gets this
	// end's frame and learns about the fault too (both ends report it).
	// The elector may have sent it already.
	c.sendBeat(false)
	err = c.readLoop()
	silent := errors.Is(err, ErrPeerSilent)
	if silent {
		// Tell the peer this end redials (beatRedial): neither counts
		// the other dead for it, only once WaitTimeout has passed. The
		// frame may wait in the outbox behind others: let it go out
		// (within the flusher's WaitTimeout) before the close.
		c.sendBye()
		c.out.CloseWrite()
		c.out.drain(c.m.cfg.WaitTimeout)
	}
	c.close()
	c.m.elect(event{kind: evDown, l: c, grace: silent})
	return c.filter.beats > 0, err
}

// handshake exchanges hello frames: each side sends its algorithm and a
// random nonce; the session key is derived from both nonces. A listener
// that opens with more than one key then learns the dialer's key from its
// first frame (adoptDialerKey). With Options.TLS, a TLS handshake comes
// first, and the hellos run inside it.
func (c *conn) handshake() error {
	c.raw.SetDeadline(time.Now().Add(c.m.patience(c.m.cfg.WaitTimeout)))
	defer c.raw.SetDeadline(time.Time{})
	if c.m.cfg.tls != nil {
		if err := c.handshakeTLS(); err != nil {
			return err
		}
		if err := c.hello(); err != nil {
			return tlsError(err) // the listener refused this node's certificate
		}
		c.m.certAccepted(c)
		return nil
	}
	if err := c.hello(); err != nil {
		return err
	}
	if c.server == "" && c.suite.key != nil && len(c.suite.accept) > 0 {
		return c.adoptDialerKey()
	}
	return nil
}

// hello sends this end's hello, reads the peer's, and derives the
// connection's sealers.
func (c *conn) hello() error {
	var mine [nonceSize]byte
	rand.Read(mine[:])
	out := appendHello(nil, c.suite.id, mine[:])
	if _, err := c.nc.Write(out); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	f, b, err := readFrameLimit(c.nc, make([]byte, 0, headerSize+helloSize), headerSize-lenSize+helloSize)
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) && looksLikeTLS(b) {
			return fmt.Errorf("%w: the peer speaks TLS", ErrAlgorithmMismatch)
		}
		return fmt.Errorf("handshake: %w", err)
	}
	if f.typ != frameHello || len(f.body) != helloSize || f.seq != 0 {
		return fmt.Errorf("%w: handshake expected a hello frame", ErrBadFrame)
	}
	if f.body[0] != c.suite.id {
		return fmt.Errorf("%w: peer uses algorithm %d, this end %q", ErrAlgorithmMismatch, f.body[0], c.suite.alg)
	}
	theirs := f.body[1:]
	dialer, listener := mine[:], theirs
	sendDir, recvDir := dirFromDialer, dirFromListener
	if c.server == "" {
		dialer, listener = theirs, mine[:]
		sendDir, recvDir = dirFromListener, dirFromDialer
	}
	c.tag = binary.BigEndian.Uint64(dialer) // both ends know it: one connection per pair
	aead, err := c.suite.sessionAEAD(dialer, listener)
	if err != nil {
		return err
	}
	c.send, c.recv = newSealer(aead, sendDir), newSealer(aead, recvDir)
	if c.recv.alts, err = c.suite.acceptAEADs(dialer, listener); err != nil {
		return err
	}
	return nil
}

// adoptDialerKey is the listener's part in key rotation. A node that opens
// with several keys (its Key and AcceptKeys) reads the dialer's first
// frame before it sends anything, finds the key that opens it, and seals
// its own frames on the connection with that key: a dialer hears back in
// the key it proved, whatever key this node seals with elsewhere. The
// frame is left for the read loop to read again. If no key opens it, this
// end seals with its own key, and both ends report ErrAuth.
func (c *conn) adoptDialerKey() error {
	c.raw.SetReadDeadline(time.Now().Add(c.m.patience(c.m.cfg.WaitTimeout)))
	f, b, err := readFrameLimit(c.nc, nil, firstFrameMax)
	if err != nil {
		return err
	}
	if f.typ == frameHeartbeat {
		if aead, ok := c.recv.opener(f.hdr, f.body, f.seq); ok {
			c.send, c.recv = newSealer(aead, dirFromListener), newSealer(aead, dirFromDialer)
		}
	}
	c.nc = &replayConn{Conn: c.nc, pending: b}
	return nil
}

// replayConn is a connection whose first reads return bytes already read
// from it.
type replayConn struct {
	net.Conn
	pending []byte
}

// CloseWrite half-closes the connection underneath, if it can.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return r.Conn.Close()
}

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.pending) == 0 {
		return r.Conn.Read(p)
	}
	n := copy(p, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

// readLoop reads heartbeats until the connection fails or stays silent
// for silentAfter (before the peer counts dead, so that a broken flow is
// redialed in time), and hands each to the elector.
func (c *conn) readLoop() error {
	br := bufio.NewReaderSize(c.nc, 4096)
	var buf, plain []byte
	// waitFrom is when the read loop began to wait for the next frame;
	// extend, that it waits on past the silence, overloaded.
	var waitFrom int64
	extend := false
	for {
		if !extend {
			waitFrom = mono()
		}
		wait := c.filter.silence(c.m.cfg.Interval, c.m.cfg.WaitTimeout)
		if extend {
			// Waiting on: patienceFactor*WaitTimeout in all, no more.
			wait = min(wait, time.Duration(waitFrom-mono())+patienceFactor*c.m.cfg.WaitTimeout)
		}
		extend = false
		deadline := mono() + int64(wait)
		c.nc.SetReadDeadline(time.Now().Add(wait))
		_, err := br.Peek(1)
		restBy := deadline // when the rest of the frame must have come
		if errors.Is(err, os.ErrDeadlineExceeded) {
			now := mono()
			c.m.ranLate(now, time.Duration(now-deadline))
			if c.m.overloaded(now) && time.Duration(now-waitFrom) < patienceFactor*c.m.cfg.WaitTimeout {
				// The peer may only be waiting for a CPU (overload.go):
				// wait on, up to patienceFactor*WaitTimeout in all.
				extend = true
				continue
			}
			// Nothing of the next frame read yet. On a loaded CPU the
			// runtime may run the deadline before it notices bytes that
			// came in long before: read once more before calling the
			// peer silent. (Without this, 64 nodes in one process on 2
			// cores closed thousands of live connections at start.)
			c.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
			restBy = mono() + int64(time.Millisecond)
			_, err = br.Peek(1)
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return ErrPeerSilent
			}
			return err
		}
		limit := MaxFrameSize
		if c.recvSeq == 0 {
			limit = firstFrameMax // not authenticated yet: no large frame
		}
		if now := mono(); c.m.overloaded(now) {
			// A frame has begun while the node is overloaded: the rest
			// of it is on the way, and may be large (a whole state) and
			// come in pieces as the peer's flusher gets a CPU. It gets
			// patienceFactor*WaitTimeout of its own. (Without this,
			// with 40 nodes in one process, thousands of connections a
			// second were closed as silent in the middle of a frame.)
			c.nc.SetReadDeadline(time.Now().Add(patienceFactor * c.m.cfg.WaitTimeout))
		} else if restBy-now < int64(wait/2) {
			// A frame that began late in the silence (or only in the
			// read once more, above): its first bytes came, so the peer
			// is not silent, and the rest gets a silence of its own.
			// (Without this the rest had what was left of the deadline,
			// a millisecond after the read once more: 40 nodes holding
			// 1,000 keys in one process closed a peer's connections as
			// silent in the middle of its frames a few milliseconds
			// late, its masterships' leases ended with them (leaseGrace),
			// and about 1 run in 4 moved keys after converging.)
			c.nc.SetReadDeadline(time.Now().Add(wait))
		}
		f, b, err := readFrameLimit(br, buf, limit)
		buf = b
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return ErrPeerSilent
			}
			return err
		}
		c.m.framesIn.Add(1)
		c.m.bytesIn.Add(uint64(len(b)))
		if f.typ != frameHeartbeat {
			return fmt.Errorf("%w: unexpected frame type %d", ErrBadFrame, f.typ)
		}
		c.recvSeq++
		if f.seq != c.recvSeq {
			return fmt.Errorf("%w: sequence %d, expected %d", ErrAuth, f.seq, c.recvSeq)
		}
		var uid []byte
		if f.flags&flagUIDInPayload == 0 {
			uid = f.uid
		}
		plain, err = c.recv.open(plain[:0], f.hdr, f.body, f.seq)
		if err != nil {
			return err
		}
		// The header is authenticated: it is the additional data.
		if changed, complete := c.filter.takeNamed(f.flags&flagNamedOnly != 0); changed {
			c.peerNamed.Store(c.filter.named) // for the elector
			if complete {
				c.sendBeat(false)
			}
		}
		c.filter.keys.own = c.m.snap.Load().KI // this node's keys as they stand (keyIntern)
		v, err := c.filter.decode(plain, uid)
		if err != nil {
			return err
		}
		if len(v.table) > 0 {
			c.m.entriesIn.Add(uint64(len(v.table)))
		}
		c.filter.lateness(&v, c.m.cfg.Interval)
		if !c.filter.news(&v, c.m.cfg.Quorum > 1) {
			// Nothing new: the elector reads when it was heard before its
			// next step.
			c.lastRead.Store(mono())
			continue
		}
		if c.filter.peerUID != c.peerName { // no allocation when equal
			c.peerName = c.filter.peerUID
			c.name = c.peerName
			if c.server != "" {
				c.name = c.server + " (" + c.peerName + ")"
			}
		}
		c.m.elect(event{kind: evBeat, l: c, beat: v.msg(c.filter.peerUID)})
		if v.flags&beatLeaving != 0 {
			return io.EOF
		}
	}
}

// appendBeat appends one sealed heartbeat frame with payload (UID first),
// with its send time and echo filled in; redial marks the last frame of a
// connection found silent. w.scratch holds the copy.
func (c *conn) appendBeat(buf []byte, w *writer, hb *outBeat, payload []byte, seq uint64, redial bool) []byte {
	var bf byte
	if c.reply.Swap(false) {
		bf |= beatReply
	}
	if c.linked.Load() {
		bf |= beatLinked
	}
	if redial {
		bf |= beatRedial
	}
	payload = w.stamp(hb.uid, payload, mono(), c.echo.Load(), bf)
	at := uidPrefixLen(hb.uid)
	var flags byte
	uid := hb.uid
	if c.askNamed.Load() {
		flags |= flagNamedOnly
	}
	if c.m.cfg.HeaderEncrypted && c.send.aead != nil {
		flags |= flagUIDInPayload
		uid = ""
	} else {
		payload = payload[at:]
	}
	start := len(buf)
	buf = appendHeader(buf, frameHeartbeat, flags, seq, uid, len(payload)+c.send.overhead())
	return c.send.seal(buf, buf[start:], payload, seq)
}

// sendBye sends the last frame on a connection found silent: the short
// form (its state, perhaps stale, is not news) that says this end redials.
func (c *conn) sendBye() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w := &c.w
	if w.done || c.m.silent.Load() {
		return
	}
	w.done = true
	hb := c.m.beat.Load()
	w.seq++
	w.buf = c.appendBeat(w.buf[:0], w, hb, hb.short, w.seq, true)
	c.write(w.buf, 1)
}

// write writes frames sealed in buf and counts them; c.wmu is held.
func (c *conn) write(buf []byte, frames uint64) error {
	if _, err := c.nc.Write(buf); err != nil {
		return err
	}
	c.m.framesOut.Add(frames)
	c.m.bytesOut.Add(uint64(len(buf)))
	return nil
}

// sendBeat sends the current heartbeat, unless there is a reason not to.
// It never waits for the network (the outbox). fresh: the caller is the
// elector, right after the core ran; otherwise a heartbeat that claims a
// mastership is held back while the elector has not run for a while.
func (c *conn) sendBeat(fresh bool) { c.sendFor(fresh, "") }

// sendConcerned sends the current heartbeat now, for member alone
// (writer.plan).
func (c *conn) sendConcerned(member string) { c.sendFor(true, member) }

func (c *conn) sendFor(fresh bool, member string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	w := &c.w
	if w.done || c.m.silent.Load() { // silent: a test hook, a node whose traffic stops
		return
	}
	hb := c.m.beat.Load()
	first, payload := w.plan(hb, !fresh && mono()-c.m.lastSent.Load() > int64(c.m.fresh), member)
	if payload == nil {
		return
	}
	buf, frames := w.buf[:0], uint64(1)
	if first != nil {
		w.seq++
		buf = c.appendBeat(buf, w, hb, first, w.seq, false)
		frames++
	}
	w.seq++
	buf = c.appendBeat(buf, w, hb, payload, w.seq, false)
	w.buf = buf
	if err := c.write(buf, frames); err != nil {
		w.done = true
		c.close()
		return
	}
	if w.sent(hb) {
		// The leave. Half-close: the peer reads it, then EOF, while this
		// end still reads what the peer sends until it closes too.
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite() // TLS: its close_notify, queued
		}
		c.out.CloseWrite() // once the queue is sent
	}
}
