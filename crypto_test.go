package msc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// end is one end of a connection: the sealer of what it sends and of what
// it receives.
type end struct{ send, recv *sealer }

// testSession derives the sealers of both ends of one connection, as the
// handshake does, with fresh random nonces.
func testSession(t testing.TB, alg, pass string) (dialer, listener end) {
	t.Helper()
	s, err := newSuite(alg, pass)
	if err != nil {
		t.Fatal(err)
	}
	var dn, ln [nonceSize]byte
	rand.Read(dn[:])
	rand.Read(ln[:])
	return sessionEnds(t, s, dn[:], ln[:])
}

func sessionEnds(t testing.TB, s *suite, dn, ln []byte) (dialer, listener end) {
	t.Helper()
	aead, err := s.sessionAEAD(dn, ln)
	if err != nil {
		t.Fatal(err)
	}
	dialer = end{newSealer(aead, dirFromDialer), newSealer(aead, dirFromListener)}
	listener = end{newSealer(aead, dirFromListener), newSealer(aead, dirFromDialer)}
	return dialer, listener
}

var algorithms = []string{"aes128", "aes192", "aes256", "no"}

// testFrame returns a sealed heartbeat frame, split in header and sealed
// body.
func testFrame(s *sealer, seq uint64, payload []byte) (hdr, body []byte) {
	frame := appendHeader(nil, frameHeartbeat, 0, seq, "node0", len(payload)+s.overhead())
	frame = s.seal(frame, frame, payload, seq)
	n := headerSize + len("node0")
	return frame[:n:n], frame[n:]
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			d, l := testSession(t, alg, "test passphrase")
			wantOverhead := 16
			if alg == "no" {
				wantOverhead = 0
			}
			if d.send.overhead() != wantOverhead {
				t.Fatalf("overhead %d, want %d", d.send.overhead(), wantOverhead)
			}
			for seq, size := range []int{0, 1, 26, 10030, 1 << 16} {
				pt := make([]byte, size)
				rand.Read(pt)
				seq := uint64(seq + 1)
				// Both directions.
				for _, pair := range [][2]end{{d, l}, {l, d}} {
					hdr, body := testFrame(pair[0].send, seq, pt)
					if len(body) != size+wantOverhead {
						t.Fatalf("sealed %d bytes into %d", size, len(body))
					}
					if alg != "no" && size >= 16 && bytes.Contains(body, pt[:16]) {
						t.Fatal("plaintext visible in the sealed body")
					}
					got, err := pair[1].recv.open(nil, hdr, body, seq)
					if err != nil {
						t.Fatalf("open: %v", err)
					}
					if !bytes.Equal(got, pt) {
						t.Fatal("opened plaintext differs")
					}
				}
			}
		})
	}
}

// TestTamper flips every byte of a sealed frame, header and body: each
// change must fail authentication.
func TestTamper(t *testing.T) {
	for _, alg := range algorithms[:3] {
		t.Run(alg, func(t *testing.T) {
			d, l := testSession(t, alg, "test passphrase")
			p, _ := encodeBeat(testBeat(3), true)
			hdr, body := testFrame(d.send, 7, p)
			if _, err := l.recv.open(nil, hdr, body, 7); err != nil {
				t.Fatal("untampered frame:", err)
			}
			for i := range hdr {
				h := bytes.Clone(hdr)
				h[i] ^= 0xff
				if _, err := l.recv.open(nil, h, body, 7); !errors.Is(err, ErrAuth) {
					t.Fatalf("header byte %d flipped: %v, want ErrAuth", i, err)
				}
			}
			for i := range body {
				for _, bit := range []byte{0x01, 0x80, 0xff} {
					b := bytes.Clone(body)
					b[i] ^= bit
					if _, err := l.recv.open(nil, hdr, b, 7); !errors.Is(err, ErrAuth) {
						t.Fatalf("body byte %d ^%#x: %v, want ErrAuth", i, bit, err)
					}
				}
			}
			// Truncated and extended bodies.
			for _, b := range [][]byte{nil, body[:15], body[:len(body)-1], append(bytes.Clone(body), 0)} {
				if _, err := l.recv.open(nil, hdr, b, 7); !errors.Is(err, ErrAuth) {
					t.Fatalf("body of %d bytes: %v, want ErrAuth", len(b), err)
				}
			}
			// The sealer still works after failures.
			if _, err := l.recv.open(nil, hdr, body, 7); err != nil {
				t.Fatal("after tampered frames:", err)
			}
		})
	}
}

// TestNoAlgorithmDoesNotAuthenticate documents "no": frames are neither
// hidden nor authenticated.
func TestNoAlgorithmDoesNotAuthenticate(t *testing.T) {
	d, l := testSession(t, "no", "")
	hdr, body := testFrame(d.send, 1, []byte("hello"))
	body[0] ^= 0xff
	got, err := l.recv.open(nil, hdr, body, 99)
	if err != nil || string(got) != "\x97ello" {
		t.Fatalf("no: %q, %v", got, err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	for _, alg := range algorithms[:3] {
		right, _ := newSuite(alg, "test passphrase")
		wrong, _ := newSuite(alg, "test passphrasf")
		var dn, ln [nonceSize]byte
		rand.Read(dn[:])
		rand.Read(ln[:])
		d, _ := sessionEnds(t, right, dn[:], ln[:])
		_, l := sessionEnds(t, wrong, dn[:], ln[:])
		hdr, body := testFrame(d.send, 1, []byte("heartbeat"))
		if _, err := l.recv.open(nil, hdr, body, 1); !errors.Is(err, ErrAuth) {
			t.Errorf("%s, wrong passphrase: %v, want ErrAuth", alg, err)
		}
	}
	// Same passphrase, another key size.
	a, _ := newSuite("aes128", "test passphrase")
	b, _ := newSuite("aes256", "test passphrase")
	dn, ln := make([]byte, nonceSize), make([]byte, nonceSize)
	d, _ := sessionEnds(t, a, dn, ln)
	_, l := sessionEnds(t, b, dn, ln)
	hdr, body := testFrame(d.send, 1, []byte("heartbeat"))
	if _, err := l.recv.open(nil, hdr, body, 1); !errors.Is(err, ErrAuth) {
		t.Errorf("aes128 frame opened as aes256: %v", err)
	}
}

// TestReplaySequence: a frame opens only with the sequence number it was
// sealed with; the sequence is in both the nonce and the header.
func TestReplaySequence(t *testing.T) {
	d, l := testSession(t, "aes128", "test passphrase")
	hdr, body := testFrame(d.send, 5, []byte("heartbeat"))
	for _, seq := range []uint64{0, 4, 6, 5 + 1<<32, ^uint64(0)} {
		if _, err := l.recv.open(nil, hdr, body, seq); !errors.Is(err, ErrAuth) {
			t.Errorf("seq 5 frame opened as %d: %v", seq, err)
		}
	}
	// Rewriting the header's sequence number does not help.
	h := bytes.Clone(hdr)
	binary.BigEndian.PutUint64(h[7:], 6)
	if _, err := l.recv.open(nil, h, body, 6); !errors.Is(err, ErrAuth) {
		t.Errorf("frame with a rewritten sequence: %v", err)
	}
	if _, err := l.recv.open(nil, hdr, body, 5); err != nil {
		t.Errorf("right sequence: %v", err)
	}
	// The same plaintext sealed twice differs: the nonce moves with seq.
	_, b2 := testFrame(d.send, 6, []byte("heartbeat"))
	if bytes.Equal(body, b2) {
		t.Error("two sequence numbers, same ciphertext")
	}
}

// TestOtherSession: a frame recorded on one connection does not open on
// another one, even with the same passphrase and sequence number.
func TestOtherSession(t *testing.T) {
	s, _ := newSuite("aes128", "test passphrase")
	var dn, ln, ln2 [nonceSize]byte
	rand.Read(dn[:])
	rand.Read(ln[:])
	rand.Read(ln2[:])
	d1, _ := sessionEnds(t, s, dn[:], ln[:])
	_, l2 := sessionEnds(t, s, dn[:], ln2[:]) // the listener chose another nonce
	_, l3 := sessionEnds(t, s, ln[:], dn[:])  // nonces swapped
	hdr, body := testFrame(d1.send, 1, []byte("heartbeat"))
	if _, err := l2.recv.open(nil, hdr, body, 1); !errors.Is(err, ErrAuth) {
		t.Errorf("frame opened in a session with another listener nonce: %v", err)
	}
	if _, err := l3.recv.open(nil, hdr, body, 1); !errors.Is(err, ErrAuth) {
		t.Errorf("frame opened in a session with swapped nonces: %v", err)
	}
}

// TestReflection: a frame cannot be sent back to its sender: the two
// directions use different nonces.
func TestReflection(t *testing.T) {
	d, l := testSession(t, "aes128", "test passphrase")
	hdr, body := testFrame(d.send, 3, []byte("heartbeat"))
	if _, err := d.recv.open(nil, hdr, body, 3); !errors.Is(err, ErrAuth) {
		t.Errorf("dialer opened its own frame: %v", err)
	}
	hdr, body = testFrame(l.send, 3, []byte("heartbeat"))
	if _, err := l.recv.open(nil, hdr, body, 3); !errors.Is(err, ErrAuth) {
		t.Errorf("listener opened its own frame: %v", err)
	}
	// Same plaintext, same seq, two directions: different ciphertexts.
	_, b1 := testFrame(d.send, 9, []byte("heartbeat"))
	_, b2 := testFrame(l.send, 9, []byte("heartbeat"))
	if bytes.Equal(b1, b2) {
		t.Error("both directions produced the same ciphertext: nonce reuse")
	}
}

// TestKDFConstants pins the key derivation strings and numbers: they are
// part of the wire format.
func TestKDFConstants(t *testing.T) {
	if kdfSalt != "msc-go/v1 passphrase" || kdfIter != 4096 || sessionInfo != "msc-go/v1 session" {
		t.Fatalf("KDF constants changed: %q %d %q", kdfSalt, kdfIter, sessionInfo)
	}
	wantIDs := map[string]byte{"no": 0, "aes128": 1, "aes192": 2, "aes256": 3}
	if len(algIDs) != len(wantIDs) {
		t.Fatalf("algIDs %v", algIDs)
	}
	for alg, id := range wantIDs {
		if algIDs[alg] != id {
			t.Errorf("algIDs[%q] = %d, want %d", alg, algIDs[alg], id)
		}
	}
}

// TestKeySizes checks the key size of each algorithm and derives the
// session key independently of the code under test (PBKDF2-SHA256, then
// HKDF-SHA256 over both nonces; nonce = direction, 3 zero bytes, seq).
func TestKeySizes(t *testing.T) {
	for alg, size := range map[string]int{"aes128": 16, "aes192": 24, "aes256": 32, "no": 0} {
		t.Run(alg, func(t *testing.T) {
			s, err := newSuite(alg, "test passphrase")
			if err != nil {
				t.Fatal(err)
			}
			if keySizes[alg] != size || len(s.key) != size || s.alg != alg {
				t.Fatalf("keySizes %d, key %d bytes, want %d", keySizes[alg], len(s.key), size)
			}
			dn, ln := bytes.Repeat([]byte{1}, nonceSize), bytes.Repeat([]byte{2}, nonceSize)
			aead, err := s.sessionAEAD(dn, ln)
			if err != nil {
				t.Fatal(err)
			}
			if size == 0 {
				if aead != nil || s.key != nil {
					t.Fatal("no: a key or an AEAD")
				}
				return
			}
			lk, err := pbkdf2.Key(sha256.New, "test passphrase", []byte("msc-go/v1 passphrase"), 4096, size)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(lk, s.key) {
				t.Fatal("long-term key is not PBKDF2-SHA256(passphrase, salt, 4096)")
			}
			sk, err := hkdf.Key(sha256.New, lk, append(bytes.Clone(dn), ln...), "msc-go/v1 session", size)
			if err != nil {
				t.Fatal(err)
			}
			block, err := aes.NewCipher(sk)
			if err != nil {
				t.Fatal(err)
			}
			gcm, _ := cipher.NewGCM(block)
			var nonce [12]byte
			nonce[0] = dirFromDialer
			binary.BigEndian.PutUint64(nonce[4:], 77)
			hdr := appendHeader(nil, frameHeartbeat, 0, 77, "x", 5+16)
			body := gcm.Seal(nil, nonce[:], []byte("hello"), hdr)
			_, l := sessionEnds(t, s, dn, ln)
			got, err := l.recv.open(nil, hdr, body, 77)
			if err != nil || string(got) != "hello" {
				t.Fatalf("independently sealed frame: %q, %v", got, err)
			}
		})
	}
	if _, err := newSuite("aes512", "x"); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Fatalf("aes512: %v", err)
	}
}

// TestOpenDoesNotClobberInput: open appends to dst and leaves the frame
// alone, so a failed frame can be reported or inspected.
func TestOpenDoesNotClobberInput(t *testing.T) {
	d, l := testSession(t, "aes128", "test passphrase")
	hdr, body := testFrame(d.send, 1, []byte("heartbeat"))
	h0, b0 := bytes.Clone(hdr), bytes.Clone(body)
	dst := []byte("prefix:")
	got, err := l.recv.open(dst, hdr, body, 1)
	if err != nil || string(got) != "prefix:heartbeat" {
		t.Fatalf("open: %q %v", got, err)
	}
	if !bytes.Equal(hdr, h0) || !bytes.Equal(body, b0) {
		t.Fatal("open modified its input")
	}
	if got, err := l.recv.open(dst, hdr, body, 2); got != nil || !errors.Is(err, ErrAuth) {
		t.Fatalf("failed open: %q, %v", got, err)
	}
}

// TestAcceptKeysFirstFramePicks: a listener that seals with one key and
// accepts another opens a connection's first frame with either; the
// connection then keeps that key, and a key it does not accept fails.
func TestAcceptKeysFirstFramePicks(t *testing.T) {
	base1, err := newSuite("aes128", "old passphrase")
	if err != nil {
		t.Fatal(err)
	}
	node, err := base1.withAccept([]string{"new passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	newer, _ := newSuite("aes128", "new passphrase")
	other, _ := newSuite("aes128", "other passphrase")
	listenerEnd := func(dn, ln []byte) *sealer {
		aead, err := node.sessionAEAD(dn, ln)
		if err != nil {
			t.Fatal(err)
		}
		r := newSealer(aead, dirFromDialer)
		if r.alts, err = node.acceptAEADs(dn, ln); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, c := range []struct {
		name        string
		first, then *suite
		firstOK     bool
		thenOK      bool
	}{
		{"old, then old", base1, base1, true, true},
		{"new, then new", newer, newer, true, true},
		{"new, then old", newer, base1, true, false},
		{"old, then new", base1, newer, true, false},
		{"other", other, other, false, false},
	} {
		dn, ln := make([]byte, nonceSize), make([]byte, nonceSize)
		rand.Read(dn)
		rand.Read(ln)
		recv := listenerEnd(dn, ln)
		d1, _ := sessionEnds(t, c.first, dn, ln)
		d2, _ := sessionEnds(t, c.then, dn, ln)
		hdr, body := testFrame(d1.send, 1, []byte("first"))
		if _, err := recv.open(nil, hdr, body, 1); (err == nil) != c.firstOK {
			t.Errorf("%s: first frame: %v", c.name, err)
			continue
		}
		hdr, body = testFrame(d2.send, 2, []byte("second"))
		if _, err := recv.open(nil, hdr, body, 2); (err == nil) != c.thenOK {
			t.Errorf("%s: second frame: %v", c.name, err)
		}
	}
	// "no" has no keys to accept.
	none, _ := newSuite("no", "")
	if s, err := none.withAccept([]string{"x"}); err != nil || s.key != nil || len(s.accept) != 0 {
		t.Fatalf("no with accept keys: %+v, %v", s, err)
	}
}

// TestAlgorithmsElect runs a 3-node cluster with each algorithm (and
// HeaderEncrypted with each cipher): the oldest is elected, peers see each
// other over the sealed connections, and a Stop hands over to the next.
func TestAlgorithmsElect(t *testing.T) {
	for _, tc := range []struct {
		alg, key string
		hidden   bool
	}{
		{"aes192", "test passphrase", false},
		{"aes256", "test passphrase", true},
		{"no", "", false},
	} {
		t.Run(fmt.Sprintf("%s/HeaderEncrypted=%v", tc.alg, tc.hidden), func(t *testing.T) {
			c := newCluster(t, 3, func(i int, o *Options) {
				o.Algorithm, o.Key, o.HeaderEncrypted = tc.alg, tc.key, tc.hidden
				o.Keys = []string{"k"}
			})
			var logs []*errLog
			for _, m := range c.nodes {
				logs = append(logs, watchErrors(m))
			}
			c.start()
			c.waitMaster(c.nodes[0])
			waitFor(t, "every node counts both peers live", func() bool {
				for _, m := range c.nodes {
					live := 0
					for _, p := range m.Status().Peers {
						if p.Live && p.Keys != nil {
							live++
						}
					}
					if live != 2 {
						return false
					}
				}
				return true
			})
			if !c.nodes[0].IsMasterByKey("k") || c.nodes[1].IsMasterByKey("k") || c.nodes[2].IsMasterByKey("k") {
				t.Fatal("key k not mastered by node0 alone")
			}
			for i, l := range logs {
				if s := l.String(); s != "" {
					t.Fatalf("node%d reported errors:%s", i, s)
				}
			}
			c.nodes[0].Stop()
			c.waitMaster(c.nodes[1])
			waitFor(t, "node1 master of k", func() bool {
				return c.nodes[1].IsMasterByKey("k") && !c.nodes[2].IsMasterByKey("k")
			})
		})
	}
}
