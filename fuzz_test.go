package msc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// Fuzz targets for everything a peer controls before and after
// authentication. Seed corpora are in testdata/fuzz/<FuzzName>/: valid
// frames, handshakes and payloads, and truncated ones.

// fuzzSeedFrames returns valid frames: a hello, and heartbeats with 0, 3
// and 40 keys, full and short, UID in the header or sealed.
func fuzzSeedFrames(t testing.TB) [][]byte {
	d, _ := testSession(t, "aes128", "fuzz passphrase")
	out := [][]byte{appendHello(nil, algIDs["aes128"], bytes.Repeat([]byte{9}, nonceSize))}
	seq := uint64(0)
	for _, n := range []int{0, 3, 40} {
		b := testBeat(n)
		for _, withKeys := range []bool{true, false} {
			p, _ := encodeBeat(b, withKeys)
			for _, hidden := range []bool{false, true} {
				seq++
				out = append(out, sealBeat(d.send, p, b.UID, seq, hidden))
			}
		}
	}
	return out
}

// FuzzReadFrame reads frames from arbitrary bytes. A frame that reads
// must be re-encoded exactly by appendHeader, and fit MaxFrameSize; a
// buffer must never grow past what the input declares and the limit.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range fuzzSeedFrames(f) {
		f.Add(fr)
		f.Add(fr[:len(fr)/2])
	}
	f.Add(frameBytes(0xffffffff, wireVersion))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var buf []byte
		consumed := 0
		for {
			fr, b, err := readFrame(r, buf)
			buf = b
			if cap(buf) > lenSize+MaxFrameSize {
				t.Fatalf("buffer of %d bytes", cap(buf))
			}
			if err != nil {
				if errors.Is(err, io.EOF) && consumed != len(in) {
					t.Fatalf("io.EOF with %d bytes left", len(in)-consumed)
				}
				return
			}
			whole := buf
			n := len(whole)
			if n > lenSize+MaxFrameSize || len(fr.hdr) < headerSize || !bytes.Equal(whole, in[consumed:consumed+n]) {
				t.Fatalf("frame of %d bytes does not match the input", n)
			}
			// Re-encode.
			again := appendHeader(nil, fr.typ, fr.flags, fr.seq, string(fr.uid), len(fr.body))
			again = append(again, fr.body...)
			if !bytes.Equal(again, whole) {
				t.Fatalf("re-encoded frame differs:\n% x\n% x", again, whole)
			}
			pf, err := parseFrame(whole)
			if err != nil || pf.seq != fr.seq || !bytes.Equal(pf.body, fr.body) {
				t.Fatalf("parseFrame disagrees with readFrame: %v", err)
			}
			consumed += n
		}
	})
}

// FuzzDecodeBeat decodes arbitrary payloads, UID in the header or not. A
// payload that decodes must survive encodeBeat and decodeBeat unchanged
// (extensions this version does not know are dropped).
func FuzzDecodeBeat(f *testing.F) {
	for _, n := range []int{0, 3, 40} {
		b := testBeat(n)
		b.Prio = 5
		for _, withKeys := range []bool{true, false} {
			p, _ := encodeBeat(b, withKeys)
			f.Add(p, false)
			f.Add(p[uidPrefixLen(b.UID):], true)
			f.Add(p[:len(p)-1], false)
		}
		// A voter's relay table, whole and as a delta.
		b.Table = map[string]core.TableEntry{"k0": {Rightful: "m1", Acting: "m1", Term: 3}, "k1": {Rightful: "m2", Term: 9}}
		p, _ := encodeBeat(b, true)
		f.Add(p, false)
		old := *b
		old.Table = map[string]core.TableEntry{"k0": {Rightful: "m1", Term: 2}, "gone": {Term: 1}}
		old.Claims, old.Known = nil, map[string]uint64{"": 4}
		p, _ = encodeDelta(b, &old, 7)
		f.Add(p, false)
		// A delta of claims alone.
		old.Table, b.Table = nil, nil
		p, _ = encodeDelta(b, &old, 9)
		f.Add(p, false)
	}
	// A connection that carried a whole state first: a delta's keys are
	// that state's. Its node's key lists are shared by every input: one
	// decoded before, by its bytes, comes back as it was (keyLists).
	var lists keyLists
	primed := func() *beatFilter {
		var f beatFilter
		f.keys.lists = &lists
		p, _ := encodeBeat(testBeat(40), true)
		if _, err := f.decode(p, nil); err != nil {
			panic(err)
		}
		return &f
	}
	f.Fuzz(func(t *testing.T, p []byte, uidInHeader bool) {
		var uid []byte
		if uidInHeader {
			uid = []byte("node7")
		}
		plain, perr := decodeBeat(p, uid)
		f := primed()
		v, err := f.decode(p, uid)
		if perr == nil && (err != nil || !slices.Equal(plain.keys, v.keys)) {
			t.Fatalf("decoded with a connection's keys: %v, %v; without: %v, %v", v.keys, err, plain.keys, perr)
		}
		if perr != nil && err == nil && v.flags&beatDelta == 0 {
			t.Fatalf("a whole state decodes only with a connection's keys: %v", perr)
		}
		if perr != nil && !errors.Is(perr, ErrBadFrame) {
			t.Fatalf("error %v does not wrap ErrBadFrame", perr)
		}
		// The same frame again on the connection: the same keys.
		if u, uerr := f.decode(p, uid); (uerr == nil) != (err == nil) || err == nil && !slices.Equal(u.keys, v.keys) {
			t.Fatalf("decoded twice on a connection: %v, %v; then %v, %v", v.keys, err, u.keys, uerr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		withKeys := v.flags&beatKeys != 0
		b := &core.Beat{UID: string(v.uid), Start: v.start, Inc: v.inc, Leaving: v.flags&beatLeaving != 0,
			Version: v.version, Keys: v.keys, Prio: v.prio, Claims: v.claims, Known: v.known, Votes: v.votes, Meta: v.meta, Table: v.table}
		var q []byte
		if v.base != 0 {
			b, old := beatsOfDelta(b, v)
			q, err = encodeDelta(b, old, v.base)
		} else {
			q, err = encodeBeat(b, withKeys)
		}
		if err != nil {
			return // too large to send back, or a claim of a key listed twice: fine
		}
		off := uidPrefixLen(b.UID)
		binary.BigEndian.PutUint64(q[off+offSent:], uint64(v.sent))
		binary.BigEndian.PutUint64(q[off+offEcho:], uint64(v.echo))
		w, err := primed().decode(q, nil)
		if err != nil {
			t.Fatalf("re-encoded heartbeat does not decode: %v", err)
		}
		if !bytes.Equal(w.uid, v.uid) || w.start != v.start || w.inc != v.inc || w.version != v.version ||
			w.prio != v.prio || w.sent != v.sent || w.echo != v.echo ||
			w.flags != sentFlags(v.flags) || !slices.Equal(w.keys, v.keys) ||
			!maps.Equal(w.table, v.table) || w.base != v.base ||
			!maps.Equal(w.claims, v.claims) || !maps.Equal(w.known, v.known) || !maps.Equal(w.votes, v.votes) ||
			!maps.Equal(w.meta, v.meta) {
			t.Fatalf("round trip changed the heartbeat:\n%+v\n%+v", v, w)
		}
	})
}

// sentFlags is the part of a heartbeat's flags that encodeBeat and
// encodeDelta set again from what decodeBeat read: the table's and the
// delta's only with the full form.
func sentFlags(f byte) byte {
	out := f & (beatLeaving | beatKeys)
	if f&beatKeys != 0 {
		out |= f & (beatTable | beatDelta)
	}
	return out
}

// beatsOfDelta returns two states whose delta (encodeDelta) is the one v
// decoded: b, holding v's new entries, and old, holding an entry where v
// says one went (state 3, a zero table entry). b holds v's maps.
func beatsOfDelta(b *core.Beat, v beatView) (nb, old *core.Beat) {
	n, o := *b, *b
	n.Claims, n.Known, o.Claims, o.Known = map[string]core.Claim{}, map[string]uint64{}, nil, map[string]uint64{}
	for k, cl := range v.claims {
		if cl.Term == 0 {
			o.Known[k] = 1
		} else {
			n.Claims[k] = cl
		}
	}
	for k, t := range v.known {
		if t != 0 {
			n.Known[k] = t
		}
	}
	if v.table != nil {
		n.Table, o.Table = map[string]core.TableEntry{}, map[string]core.TableEntry{}
		for k, e := range v.table {
			if e == (core.TableEntry{}) {
				o.Table[k] = core.TableEntry{Term: 1}
			} else {
				n.Table[k] = e
			}
		}
	}
	return &n, &o
}

// fuzzSession is a fixed session: the fuzzer's inputs meet the same key
// and nonces every run.
func fuzzSession(t testing.TB) (dialer, listener end) {
	s, err := newSuite("aes128", "fuzz passphrase")
	if err != nil {
		t.Fatal(err)
	}
	return sessionEnds(t, s, bytes.Repeat([]byte{1}, nonceSize), bytes.Repeat([]byte{2}, nonceSize))
}

// FuzzOpen opens arbitrary headers and bodies. Nothing but a frame sealed
// under the session key opens; what opens re-seals to the same body.
func FuzzOpen(f *testing.F) {
	d, _ := fuzzSession(f)
	for i, n := range []int{0, 3, 40} {
		p, _ := encodeBeat(testBeat(n), i%2 == 0)
		hdr, body := testFrame(d.send, uint64(i+1), p)
		f.Add(hdr, body, uint64(i+1))
		f.Add(hdr, body[:len(body)-1], uint64(i+1))
		f.Add(hdr, body, uint64(i+2))
	}
	aead := d.send.aead
	f.Fuzz(func(t *testing.T, hdr, body []byte, seq uint64) {
		d := end{newSealer(aead, dirFromDialer), newSealer(aead, dirFromListener)}
		l := end{newSealer(aead, dirFromListener), newSealer(aead, dirFromDialer)}
		pt, err := l.recv.open(nil, hdr, body, seq)
		if err != nil {
			if !errors.Is(err, ErrAuth) || pt != nil {
				t.Fatalf("open: %q, %v", pt, err)
			}
			return
		}
		if again := d.send.seal(nil, hdr, pt, seq); !bytes.Equal(again, body) {
			t.Fatal("a body that opens does not re-seal to itself")
		}
		// Another sequence number or direction must not open it.
		if _, err := l.recv.open(nil, hdr, body, seq+1); err == nil {
			t.Fatal("opened with another sequence number")
		}
		if _, err := d.recv.open(nil, hdr, body, seq); err == nil {
			t.Fatal("opened in the other direction")
		}
	})
}

// FuzzHandshake plays the peer of a handshake over net.Pipe: it reads the
// node's hello, then answers with arbitrary bytes. The handshake succeeds
// exactly when those bytes start with a hello of the node's algorithm; the
// session keys then agree with the peer's.
func FuzzHandshake(f *testing.F) {
	s, err := newSuite("aes128", "fuzz passphrase")
	if err != nil {
		f.Fatal(err)
	}
	hello := appendHello(nil, s.id, bytes.Repeat([]byte{5}, nonceSize))
	f.Add(hello, false)
	f.Add(hello, true)
	f.Add(hello[:len(hello)-1], true)
	f.Add(append(slices.Clone(hello), 0, 0, 0, 1), false)
	f.Add(appendHello(nil, algIDs["aes256"], make([]byte, nonceSize)), false)
	f.Add([]byte{}, true)
	m := &Msc{cfg: &config{Options: Options{WaitTimeout: 5 * time.Second}, suite: s}}
	f.Fuzz(func(t *testing.T, reply []byte, dialer bool) {
		a, b := net.Pipe()
		server := ""
		if dialer {
			server = "peer"
		}
		c := newConn(m, a, context.Background(), server, s)
		nodeHello := make([]byte, headerSize+helloSize)
		done := make(chan error, 1)
		go func() {
			_, err := io.ReadFull(b, nodeHello)
			if err == nil {
				b.Write(reply) // fails once the node has read what it wants and closed
			}
			b.Close()
			done <- err
		}()
		err := c.handshake()
		a.Close()
		if perr := <-done; perr != nil {
			t.Fatalf("reading the node's hello: %v", perr)
		}
		fr, _, ferr := readFrame(bytes.NewReader(reply), nil)
		valid := ferr == nil && fr.typ == frameHello && fr.seq == 0 && len(fr.body) == helloSize && fr.body[0] == s.id
		if valid != (err == nil) {
			t.Fatalf("reply % x: handshake error %v, valid hello %v", reply, err, valid)
		}
		if err != nil {
			return
		}
		// The peer derives the session from the two nonces; each side
		// opens what the other seals.
		dn, ln := nodeHello[headerSize+1:], fr.body[1:]
		if !dialer {
			dn, ln = ln, dn
		}
		pd, pl := sessionEnds(t, s, dn, ln)
		peer := pl
		if !dialer {
			peer = pd
		}
		hdr, body := testFrame(c.send, 1, []byte("from the node"))
		if pt, err := peer.recv.open(nil, hdr, body, 1); err != nil || string(pt) != "from the node" {
			t.Fatalf("peer cannot open the node's frame: %v", err)
		}
		hdr, body = testFrame(peer.send, 1, []byte("from the peer"))
		if pt, err := c.recv.open(nil, hdr, body, 1); err != nil || string(pt) != "from the peer" {
			t.Fatalf("node cannot open the peer's frame: %v", err)
		}
	})
}

// FuzzAdoptDialerKey plays the dialer against a listener that opens with
// three keys (its Key and two AcceptKeys): after the hellos it sends a
// first heartbeat sealed with key kind%4 (3: a key the listener does not
// know), with the bytes of flip XORed into it and tail appended. The
// handshake succeeds exactly when a frame of at most firstFrameMax bytes
// reads from those bytes; the listener then seals with the key that opens
// that frame, or with its own if none does, and its connection reads the
// frame again, byte for byte.
func FuzzAdoptDialerKey(f *testing.F) {
	var keys []*suite
	for _, p := range []string{"key zero", "key one", "key two", "unknown key"} {
		s, err := newSuite("aes128", p)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, s)
	}
	node, err := keys[0].withAccept([]string{"key one", "key two"})
	if err != nil {
		f.Fatal(err)
	}
	for kind := range byte(4) {
		f.Add(kind, []byte{}, []byte{})
		f.Add(kind, []byte{0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{})  // sequence 1 → 0
		f.Add(kind, []byte{0, 0, 0, 0, 0, 3}, []byte{})           // frame type 2 → 1
		f.Add(kind, []byte{0, 0, 0, 1}, []byte{})                 // one byte longer than sent
		f.Add(kind, append(make([]byte, 30), 0x80), []byte{1, 2}) // a flipped body bit
		f.Add(kind, []byte{0x7f}, []byte{})                       // a length far over the limit
	}
	m := &Msc{cfg: &config{Options: Options{WaitTimeout: 5 * time.Second}, suite: node}}
	peerNonce := bytes.Repeat([]byte{5}, nonceSize)
	f.Fuzz(func(t *testing.T, kind byte, flip, tail []byte) {
		seal := keys[kind%4]
		a, b := net.Pipe()
		c := newConn(m, a, context.Background(), "", node)
		sent := make(chan []byte, 1)
		go func() {
			defer b.Close()
			nodeHello := make([]byte, headerSize+helloSize)
			if _, err := io.ReadFull(b, nodeHello); err != nil {
				sent <- nil
				return
			}
			aead, _ := seal.sessionAEAD(peerNonce, nodeHello[headerSize+1:])
			p, _ := encodeBeat(testBeat(0), false)
			fr := sealBeat(newSealer(aead, dirFromDialer), p, "node0", 1, false)
			for i := range min(len(flip), len(fr)) {
				fr[i] ^= flip[i]
			}
			out := append(appendHello(nil, seal.id, peerNonce), fr...)
			out = append(out, tail...)
			sent <- append(nodeHello, out...)
			b.Write(out) // fails once the node has read what it wants and closed
		}()
		err := c.handshake()
		got := <-sent
		if got == nil {
			a.Close()
			t.Fatal("the node sent no hello")
		}
		nodeNonce := got[headerSize+1 : headerSize+helloSize]
		first := got[2*(headerSize+helloSize):] // the first frame, then tail
		fr, _, ferr := readFrameLimit(bytes.NewReader(first), nil, firstFrameMax)
		if (ferr == nil) != (err == nil) {
			a.Close()
			t.Fatalf("frame % x: handshake error %v, frame error %v", first, err, ferr)
		}
		if err != nil {
			a.Close()
			return
		}
		// The key the listener must seal with: the first of its keys
		// that opens the frame, else its own.
		want := 0
		if fr.typ == frameHeartbeat {
			for i, k := range keys[:3] {
				aead, _ := k.sessionAEAD(peerNonce, nodeNonce)
				if _, err := newSealer(aead, dirFromDialer).open(nil, fr.hdr, fr.body, fr.seq); err == nil {
					want = i
					break
				}
			}
		}
		aead, _ := keys[want].sessionAEAD(peerNonce, nodeNonce)
		hdr, body := testFrame(c.send, 1, []byte("from the node"))
		if pt, err := newSealer(aead, dirFromListener).open(nil, hdr, body, 1); err != nil || string(pt) != "from the node" {
			t.Fatalf("the node does not seal with key %d: %v", want, err)
		}
		// The read loop reads the frame again.
		n := lenSize + int(binary.BigEndian.Uint32(first))
		again := make([]byte, n)
		if _, err := io.ReadFull(c.nc, again); err != nil || !bytes.Equal(again, first[:n]) {
			t.Fatalf("read again % x, %v; want % x", again, err, first[:n])
		}
		a.Close()
	})
}
