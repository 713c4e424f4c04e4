package msc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// loneNode starts a node without peers, master at once, with keys.
func loneNode(tb testing.TB, keys []string) *Msc {
	tb.Helper()
	o := testOptions(0)
	o.Listener = listen(tb)
	o.Keys = keys
	m, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Stop() })
	return m
}

// TestHotPathsDoNotAllocate: IsMaster and IsMasterByKey are lock-free
// reads without allocation (DESIGN §2), and so is reading, opening and
// decoding a steady-state heartbeat (wire.go: beatView).
func TestHotPathsDoNotAllocate(t *testing.T) {
	m := loneNode(t, testKeys(1000))
	if !m.IsMaster() || !m.IsMasterByKey("key-0500") || m.IsMasterByKey("nope") {
		t.Fatal("lone node is not master of its keys")
	}
	for name, f := range map[string]func(){
		"IsMaster":                  func() { m.IsMaster() },
		"IsMasterByKey":             func() { m.IsMasterByKey("key-0500") },
		"IsMasterByKey missing key": func() { m.IsMasterByKey("nope") },
	} {
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %.1f allocations", name, a)
		}
	}

	d, l := testSession(t, "aes128", "test passphrase")
	p, _ := encodeBeat(testBeat(1000), false)
	payload := p[uidPrefixLen("node0"):]
	var frame, buf, plain []byte
	frame = make([]byte, 0, 512)
	r := bytes.NewReader(nil)
	seq := uint64(0)
	a := testing.AllocsPerRun(1000, func() {
		seq++
		frame = appendHeader(frame[:0], frameHeartbeat, 0, seq, "node0", len(payload)+d.send.overhead())
		frame = d.send.seal(frame, frame, payload, seq)
		r.Reset(frame)
		f, nb, err := readFrame(r, buf)
		buf = nb
		if err != nil {
			panic(err)
		}
		plain, err = l.recv.open(plain[:0], f.hdr, f.body, f.seq)
		if err != nil {
			panic(err)
		}
		if _, err := decodeBeat(plain, f.uid); err != nil {
			panic(err)
		}
	})
	if a != 0 {
		t.Errorf("steady-state heartbeat (seal, read, open, decode): %.1f allocations", a)
	}
}

func BenchmarkIsMaster(b *testing.B) {
	m := loneNode(b, nil)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if m.IsMaster() {
			n++
		}
	}
	if n == 0 {
		b.Fatal("lone node not master")
	}
}

// BenchmarkIsMasterNotMaster: IsMaster on a node that is not master (here
// one not started): no clock read.
func BenchmarkIsMasterNotMaster(b *testing.B) {
	m, err := New(Options{Key: "k"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if m.IsMaster() {
			n++
		}
	}
	if n != 0 {
		b.Fatal("a node not started is master")
	}
}

// BenchmarkMono is the clock read IsMaster makes on a master.
func BenchmarkMono(b *testing.B) {
	var t int64
	for b.Loop() {
		t += mono()
	}
	if t == 0 {
		b.Fatal("the clock stands still")
	}
}

func BenchmarkIsMasterByKey(b *testing.B) {
	m := loneNode(b, testKeys(1000))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if m.IsMasterByKey("key-0500") {
			n++
		}
	}
	if n == 0 {
		b.Fatal("lone node not master of its key")
	}
}

// BenchmarkSealBeat: the write loop's work for a steady-state heartbeat,
// header and sealing (aes128), into a reused buffer.
func BenchmarkSealBeat(b *testing.B) {
	d, _ := testSession(b, "aes128", "test passphrase")
	p, _ := encodeBeat(testBeat(0), false)
	payload := p[uidPrefixLen("node0"):]
	buf := make([]byte, 0, 512)
	seq := uint64(0)
	b.ReportAllocs()
	for b.Loop() {
		seq++
		buf = appendHeader(buf[:0], frameHeartbeat, 0, seq, "node0", len(payload)+d.send.overhead())
		buf = d.send.seal(buf, buf, payload, seq)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkOpenBeat: the read loop's work after readFrame: open and
// decode, for the short form and the full form with 0, 10, 1000 keys.
func BenchmarkOpenBeat(b *testing.B) {
	d, l := testSession(b, "aes128", "test passphrase")
	for _, c := range []struct {
		name     string
		keys     int
		withKeys bool
	}{{"short", 1000, false}, {"full/keys=0", 0, true}, {"full/keys=10", 10, true}, {"full/keys=1000", 1000, true}} {
		b.Run(c.name, func(b *testing.B) {
			p, _ := encodeBeat(testBeat(c.keys), c.withKeys)
			frame := sealBeat(d.send, p, "node0", 7, false)
			f, err := parseFrame(frame)
			if err != nil {
				b.Fatal(err)
			}
			var plain []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for b.Loop() {
				plain, err = l.recv.open(plain[:0], f.hdr, f.body, f.seq)
				if err != nil {
					b.Fatal(err)
				}
				v, err := decodeBeat(plain, f.uid)
				if err != nil || len(v.keys) != c.keys && c.withKeys {
					b.Fatal(err)
				}
			}
		})
	}
}

// newCoreBench builds a core for "self" (started at self) with keys, and
// peers (started at start(i)) live over connections, holding the same
// keys, fed in through recv as a real node would be. It returns the core
// and the time of its last step.
func newCoreBench(tb testing.TB, peers int, keys []string, balance bool, start func(i int) int64, self time.Time) (*core.Core, int64) {
	now := int64(time.Second)
	cfg := core.Config{UID: "self", Start: self.UnixNano(), Inc: 1, Interval: core.Duration(100 * time.Millisecond), Wait: core.Duration(300 * time.Millisecond), Balance: balance}
	c := core.New(cfg, keys, nil)
	c.Start(now, nil)
	for i := range peers {
		id := core.ConnID(i + 1)
		c.Up(now, id, "", uint64(i))
		c.Recv(now, now, id, &core.Msg{UID: fmt.Sprintf("peer%d", i), Start: start(i), Inc: uint64(i + 2), Sent: 1, Version: 1, Full: true, Keys: keys})
	}
	c.Tick(now)
	return c, now
}

// BenchmarkElect: one full election with 9 live peers and 1,000 keys.
func BenchmarkElect(b *testing.B) {
	for _, balance := range []bool{false, true} {
		b.Run(fmt.Sprintf("balance=%v", balance), func(b *testing.B) {
			c, now := newCoreBench(b, 9, testKeys(1000), balance,
				func(i int) int64 { return base.Add(time.Duration(i) * 15 * time.Second).UnixNano() }, // 0-3 older, 4-8 younger
				base.Add(time.Minute))
			if s := c.Snap(); s.Master || s.MasterUID != "peer0" || s.Len() != 1000 {
				b.Fatalf("elected %q (self master %v) over %d keys", s.MasterUID, s.Master, s.Len())
			}
			b.ReportAllocs()
			for b.Loop() {
				c.Elect(now)
			}
		})
	}
}

// BenchmarkHeartbeatRoundTrip: one steady-state heartbeat from one node to
// another: header, seal, write, read, open, decode. "loopback" runs over a
// real TCP connection after a real handshake; "memory" without the
// socket.
func BenchmarkHeartbeatRoundTrip(b *testing.B) {
	s, err := newSuite("aes128", "test passphrase")
	if err != nil {
		b.Fatal(err)
	}
	p, _ := encodeBeat(testBeat(0), false)
	payload := p[uidPrefixLen("node0"):]

	b.Run("loopback", func(b *testing.B) {
		dialer, listener := handshakePair(b, s)
		br := bufio.NewReaderSize(listener.nc, 4096)
		out := make([]byte, 0, 512)
		var buf, plain []byte
		seq := uint64(0)
		b.ReportAllocs()
		for b.Loop() {
			seq++
			out = appendHeader(out[:0], frameHeartbeat, 0, seq, "node0", len(payload)+dialer.send.overhead())
			out = dialer.send.seal(out, out, payload, seq)
			if _, err := dialer.nc.Write(out); err != nil {
				b.Fatal(err)
			}
			f, nb, err := readFrame(br, buf)
			buf = nb
			if err != nil || f.seq != seq {
				b.Fatal(err)
			}
			if plain, err = listener.recv.open(plain[:0], f.hdr, f.body, f.seq); err != nil {
				b.Fatal(err)
			}
			if _, err := decodeBeat(plain, f.uid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memory", func(b *testing.B) {
		d, l := testSession(b, "aes128", "test passphrase")
		out := make([]byte, 0, 512)
		var plain []byte
		seq := uint64(0)
		b.ReportAllocs()
		for b.Loop() {
			seq++
			out = appendHeader(out[:0], frameHeartbeat, 0, seq, "node0", len(payload)+d.send.overhead())
			out = d.send.seal(out, out, payload, seq)
			f, err := parseFrame(out)
			if err != nil {
				b.Fatal(err)
			}
			if plain, err = l.recv.open(plain[:0], f.hdr, f.body, f.seq); err != nil {
				b.Fatal(err)
			}
			if _, err := decodeBeat(plain, f.uid); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// handshakePair connects two conns over loopback TCP and runs the real
// handshake on both ends.
func handshakePair(tb testing.TB, s *suite) (dialer, listener *conn) {
	tb.Helper()
	return handshakePairOf(tb, &Msc{cfg: &config{Options: Options{WaitTimeout: 5 * time.Second}, suite: s}}, s)
}

// handshakePairOf is handshakePair, both conns of node m.
func handshakePairOf(tb testing.TB, m *Msc, s *suite) (dialer, listener *conn) {
	tb.Helper()
	dc, lc := loopbackPair(tb)
	dialer = newConn(m, dc, context.Background(), "peer", s)
	listener = newConn(m, lc, context.Background(), "", s)
	errs := make(chan error, 1)
	go func() { errs <- listener.handshake() }()
	if err := dialer.handshake(); err != nil {
		tb.Fatal(err)
	}
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	return dialer, listener
}

// TestSteadyHeartbeatAllocs: a steady heartbeat (short form, state
// unchanged) costs no allocation to seal and send, to read, open and
// decode, or for the core to take in.
func TestSteadyHeartbeatAllocs(t *testing.T) {
	// Sealing, as the writer does, into its reused buffers.
	d, l := testSession(t, "aes128", "test passphrase")
	b := testBeat(10)
	full, _ := encodeBeat(b, true)
	short, _ := encodeBeat(b, false)
	hb := &outBeat{uid: b.UID, version: b.Version, short: short}
	hb.setFull(full)
	m, err := New(Options{Key: "k"})
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{m: m, send: d.send}
	w := &writer{}
	seq := uint64(0)
	frame := func() []byte {
		seq++
		w.buf = c.appendBeat(w.buf[:0], w, hb, hb.short, seq, false)
		return w.buf
	}
	frame()
	if n := testing.AllocsPerRun(100, func() { frame() }); n != 0 {
		t.Errorf("sealing a steady heartbeat: %.0f allocations", n)
	}

	// Reading, opening, decoding, and the message for the core.
	var frames [][]byte
	for range 110 {
		frames = append(frames, slices.Clone(frame()))
	}
	next := 0
	var buf, plain []byte
	r := bytes.NewReader(nil)
	var msg core.Msg
	peerUID := b.UID
	read := func() {
		r.Reset(frames[next])
		next++
		f, nb, err := readFrame(r, buf)
		buf = nb
		if err != nil {
			panic(err)
		}
		if plain, err = l.recv.open(plain[:0], f.hdr, f.body, f.seq); err != nil {
			panic(err)
		}
		v, err := decodeBeat(plain, f.uid)
		if err != nil {
			panic(err)
		}
		msg = v.msg(peerUID)
	}
	read()
	if n := testing.AllocsPerRun(100, read); n != 0 {
		t.Errorf("reading a steady heartbeat: %.0f allocations", n)
	}

	// The core taking it in.
	cc, now := newCoreBench(t, 1, testKeys(10), false, func(int) int64 { return base.UnixNano() }, base.Add(time.Minute))
	steady := core.Msg{UID: "peer0", Start: base.UnixNano(), Inc: 2, Version: 1}
	sent := int64(1)
	take := func() {
		sent++
		now += int64(time.Millisecond)
		steady.Sent = sent
		cc.Recv(now, now, 1, &steady)
	}
	take()
	if n := testing.AllocsPerRun(100, take); n != 0 {
		t.Errorf("the core taking a steady heartbeat: %.0f allocations", n)
	}
	_ = msg
}

// BenchmarkRecvNews: a peer's new state (its claims changed, its keys
// the same), as during a cluster's churn: 19 live peers holding the same
// 100 keys with Balance; each frame is taken in and elected on (Recv,
// then Out, as the elector does).
func BenchmarkRecvNews(b *testing.B) {
	keys := testKeys(100)
	c, now := newCoreBench(b, 19, keys, true,
		func(i int) int64 { return base.Add(time.Duration(i) * time.Second).UnixNano() }, base.Add(time.Minute))
	c.Out().Reset()
	b.ReportAllocs()
	v := uint64(1)
	for b.Loop() {
		v++
		claims := map[string]core.Claim{keys[v%100]: {Term: v, Acting: true}}
		c.Recv(now, now, 1, &core.Msg{UID: "peer0", Start: base.UnixNano(), Inc: 2, Sent: int64(v), Version: v, Full: true, Keys: keys, Claims: claims})
		c.Out().Reset()
	}
}

// BenchmarkTakeWholeState is what a node of 40 holding the same 1,000 keys
// with Balance does for each new connection's first state: decode a peer's
// whole state (23 KB) on a connection that has seen no key yet, take it in
// and elect (docs/performance.md, "Scale: keys with Balance").
func BenchmarkTakeWholeState(b *testing.B) {
	keys := testKeys(1000)
	at := func(i int) int64 { return base.Add(time.Duration(i) * 15 * time.Second).UnixNano() }
	c, now := newCoreBench(b, 39, keys, true, at, base.Add(time.Minute))
	bt := &core.Beat{UID: "peer3", Start: at(3), Inc: 5, Version: 2, Keys: keys, Claims: map[string]core.Claim{}, Known: map[string]uint64{}}
	for i, k := range keys {
		if i%40 == 3 {
			bt.Claims[k] = core.Claim{Term: 4, Acting: true}
		} else {
			bt.Known[k] = 3
		}
	}
	p, err := encodeBeat(bt, true)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	ver := uint64(2)
	for b.Loop() {
		var f beatFilter
		v, err := f.decode(p, nil)
		if err != nil {
			b.Fatal(err)
		}
		ver++
		m := v.msg("peer3")
		m.Version = ver
		c.Up(now, 1000, "", 1)
		c.Recv(now, now, 1000, &m)
		c.Elect(now)
		c.Down(now, 1000, false)
	}
}

// BenchmarkDecodeTable is what a member holding 1,000 keys does with a
// voter's whole relay table of those keys (Options.Voters): decode it,
// its keys taken as the member's own strings (keyIntern).
func BenchmarkDecodeTable(b *testing.B) {
	keys := testKeys(1000)
	t := make(map[string]core.TableEntry, len(keys))
	for i, k := range keys {
		uid := fmt.Sprintf("member-%04d", (i*7)%997)
		t[k] = core.TableEntry{Rightful: uid, Acting: uid, Term: uint64(i + 1)}
	}
	p := appendTable(nil, t, 0)
	own := core.New(core.Config{UID: "self", Interval: core.Duration(time.Second), Wait: core.Duration(3 * time.Second)}, keys, nil).Snap().KI
	in := &keyIntern{own: own}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		got, _, _, err := decodeTable(p, in, false)
		if err != nil || len(got) != len(keys) {
			b.Fatalf("%d entries, %v", len(got), err)
		}
	}
}
