package msc

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/msc-go/msc/internal/core"
	"github.com/msc-go/msc/internal/relay"
)

// TestWireConstants pins every constant of the wire format. Changing one
// of them breaks every deployed peer: if this test fails, bump wireVersion
// and update docs/wire.md, do not just update the numbers.
func TestWireConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"wireVersion", int(wireVersion), 4},
		{"frameHello", int(frameHello), 1},
		{"frameHeartbeat", int(frameHeartbeat), 2},
		{"flagUIDInPayload", int(flagUIDInPayload), 1},
		{"flagNamedOnly", int(flagNamedOnly), 2},
		{"lenSize", lenSize, 4},
		{"headerSize", headerSize, 16},
		{"MaxFrameSize", MaxFrameSize, 1 << 20},
		{"nonceSize", nonceSize, 16},
		{"helloSize", helloSize, 17},
		{"beatLeaving", int(beatLeaving), 1},
		{"beatKeys", int(beatKeys), 2},
		{"MaxUIDLen", MaxUIDLen, 255},
		{"MaxKeyLen", MaxKeyLen, 1024},
		{"dirFromDialer", int(dirFromDialer), 0},
		{"dirFromListener", int(dirFromListener), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if headerSize != lenSize+1+1+1+8+1 {
		t.Errorf("headerSize %d is not length+version+type+flags+seq+uidlen", headerSize)
	}
	// The UID length is one byte, so a UID longer than that cannot be framed.
	if MaxUIDLen > 255 {
		t.Errorf("MaxUIDLen %d does not fit the one-byte UID length", MaxUIDLen)
	}
	// A key length is a uint16 on the wire.
	if MaxKeyLen > 1<<16-1 {
		t.Errorf("MaxKeyLen %d does not fit the two-byte key length", MaxKeyLen)
	}
}

// TestWireGolden pins the exact bytes of a header, a hello and a heartbeat
// payload.
func TestWireGolden(t *testing.T) {
	hdr := appendHeader(nil, frameHeartbeat, flagUIDInPayload, 0x0102030405060708, "ab", 3)
	wantHdr := "00000011" + "04" + "02" + "01" + "0102030405060708" + "02" + "6162"
	if got := hex.EncodeToString(hdr); got != wantHdr {
		t.Errorf("header\n got %s\nwant %s", got, wantHdr)
	}

	nonce := make([]byte, nonceSize)
	for i := range nonce {
		nonce[i] = byte(0xa0 + i)
	}
	hello := appendHello(nil, 3, nonce)
	wantHello := "0000001d" + "04" + "01" + "00" + "0000000000000000" + "00" + "03" + hex.EncodeToString(nonce)
	if got := hex.EncodeToString(hello); got != wantHello {
		t.Errorf("hello\n got %s\nwant %s", got, wantHello)
	}

	b := &core.Beat{UID: "n1", Start: 0x0102030405060708, Inc: 7, Leaving: true, Version: 3, Prio: -2,
		Keys: []string{"a", "bc"}, Claims: map[string]core.Claim{"": {Term: 5, Acting: true}, "bc": {Term: 9}}, Known: map[string]uint64{"a": 7},
		Votes: map[string]core.Vote{"a": {UID: "n2", Inc: 4, Term: 6}}, Meta: map[string]string{"http": ":8080"}}
	full, err := encodeBeat(b, true)
	if err != nil {
		t.Fatal(err)
	}
	fixed := "02" + "6e31" + "0000000000000000" + "0000000000000000" + // uid, sent, echo (filled in by each frame)
		"0102030405060708" + "0000000000000007" // start, incarnation
	tail := "0000000000000003" + "fffffffffffffffe" // version, priority
	wantFull := fixed + "03" + tail +
		"00000002" + "0001" + "61" + "0002" + "6263" + // keys
		"00000003" + "ffffffff" + "0000000000000005" + "01" + // claims: global, term 5, master
		"00000000" + "0000000000000007" + "02" + // key 0: no claim, term 7 known
		"00000001" + "0000000000000009" + "00" + // key 1, term 9, not yet master
		"00000001" + "0001" + "61" + "02" + "6e32" + "0000000000000004" + "0000000000000006" + // votes: a → n2/4, term 6
		"0001" + "0004" + "68747470" + "0005" + "3a38303830" // metadata: http → :8080
	if got := hex.EncodeToString(full); got != wantFull {
		t.Errorf("full heartbeat\n got %s\nwant %s", got, wantFull)
	}
	short, err := encodeBeat(b, false)
	if err != nil {
		t.Fatal(err)
	}
	wantShort := fixed + "01" + tail
	if got := hex.EncodeToString(short); got != wantShort {
		t.Errorf("short heartbeat\n got %s\nwant %s", got, wantShort)
	}
	if off := uidPrefixLen(b.UID); hex.EncodeToString(short[off+offSent:off+offEcho+8]) != strings.Repeat("0", 32) {
		t.Errorf("sent and echo are not at offsets %d and %d", offSent, offEcho)
	}
}

// testKeys returns n keys like "key-0042".
func testKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%04d", i)
	}
	return keys
}

// testBeat returns the heartbeat of "node0" with n keys: it claims the
// global mastership and every other key (every fourth as master), and
// votes for one key's claim by node1.
func testBeat(n int) *core.Beat {
	b := &core.Beat{UID: "node0", Start: base.UnixNano(), Inc: 0xdeadbeef, Version: 42, Keys: testKeys(n),
		Claims: map[string]core.Claim{"": {Term: 3, Acting: true}}, Votes: map[string]core.Vote{"": {UID: "node0", Inc: 0xdeadbeef, Term: 3}}}
	for i := 0; i < n; i += 2 {
		b.Claims[b.Keys[i]] = core.Claim{Term: uint64(100 + i), Acting: i%4 == 0}
	}
	if n > 3 {
		b.Known = map[string]uint64{b.Keys[3]: 99}
	}
	if n > 1 {
		b.Votes[b.Keys[1]] = core.Vote{UID: "node1", Inc: 7, Term: 5}
	}
	return b
}

func checkView(t *testing.T, v beatView, b *core.Beat, withKeys bool) {
	t.Helper()
	if string(v.uid) != b.UID || v.start != b.Start || v.inc != b.Inc || v.version != b.Version || v.prio != b.Prio {
		t.Fatalf("decoded %q %d %d %d %d, want %q %d %d %d %d", v.uid, v.start, v.inc, v.version, v.prio,
			b.UID, b.Start, b.Inc, b.Version, b.Prio)
	}
	if got := v.flags&beatLeaving != 0; got != b.Leaving {
		t.Fatalf("leaving = %v, want %v", got, b.Leaving)
	}
	if got := v.flags&beatKeys != 0; got != withKeys {
		t.Fatalf("keys flag = %v, want %v", got, withKeys)
	}
	if !withKeys {
		if v.keys != nil || v.claims != nil || v.votes != nil {
			t.Fatalf("short form decoded keys %v", v.keys)
		}
		return
	}
	if !slices.Equal(v.keys, b.Keys) || v.keys == nil {
		t.Fatalf("keys: got %d, want %d", len(v.keys), len(b.Keys))
	}
	if !maps.Equal(v.claims, b.Claims) && !(len(v.claims) == 0 && len(b.Claims) == 0) {
		t.Fatalf("claims: got %v, want %v", v.claims, b.Claims)
	}
	if !maps.Equal(v.known, b.Known) && !(len(v.known) == 0 && len(b.Known) == 0) {
		t.Fatalf("known terms: got %v, want %v", v.known, b.Known)
	}
	if !maps.Equal(v.votes, b.Votes) && !(len(v.votes) == 0 && len(b.Votes) == 0) {
		t.Fatalf("votes: got %v, want %v", v.votes, b.Votes)
	}
}

func TestBeatRoundTrip(t *testing.T) {
	for _, n := range []int{0, 10, 1000} {
		for _, leaving := range []bool{false, true} {
			t.Run(fmt.Sprintf("keys=%d/leaving=%v", n, leaving), func(t *testing.T) {
				b := testBeat(n)
				b.Leaving = leaving
				if leaving {
					b.Prio = -7
					b.Claims[""] = core.Claim{Term: 1 << 40}
					b.Votes["k"] = core.Vote{UID: strings.Repeat("u", MaxUIDLen), Inc: 1, Term: 1 << 50}
				}
				for _, withKeys := range []bool{true, false} {
					p, err := encodeBeat(b, withKeys)
					if err != nil {
						t.Fatal(err)
					}
					// UID in the payload (HeaderEncrypted).
					v, err := decodeBeat(p, nil)
					if err != nil {
						t.Fatal(err)
					}
					checkView(t, v, b, withKeys)
					// UID in the header: the payload without its UID prefix.
					v, err = decodeBeat(p[uidPrefixLen(b.UID):], []byte(b.UID))
					if err != nil {
						t.Fatal(err)
					}
					checkView(t, v, b, withKeys)
				}
			})
		}
	}
}

// TestBeatFrameRoundTrip sends heartbeats through the whole codec: header,
// seal, readFrame, open, decodeBeat, both with the UID in the header and
// with it sealed in the payload.
func TestBeatFrameRoundTrip(t *testing.T) {
	d, l := testSession(t, "aes128", "test passphrase")
	for _, n := range []int{0, 10, 1000} {
		for _, hidden := range []bool{false, true} {
			t.Run(fmt.Sprintf("keys=%d/headerEncrypted=%v", n, hidden), func(t *testing.T) {
				b := testBeat(n)
				var stream bytes.Buffer
				for seq, withKeys := range []bool{true, false, false} {
					p, _ := encodeBeat(b, withKeys)
					stream.Write(sealBeat(d.send, p, b.UID, uint64(seq+1), hidden))
				}
				if hidden && bytes.Contains(stream.Bytes(), []byte(b.UID)) {
					t.Fatal("UID readable on the wire with the header encrypted")
				}
				if !hidden && !bytes.Contains(stream.Bytes(), []byte(b.UID)) {
					t.Fatal("UID not in the clear header")
				}
				var buf, plain []byte
				for seq, withKeys := range []bool{true, false, false} {
					f, nb, err := readFrame(&stream, buf)
					buf = nb
					if err != nil {
						t.Fatal(err)
					}
					if f.typ != frameHeartbeat || f.seq != uint64(seq+1) {
						t.Fatalf("type %d seq %d", f.typ, f.seq)
					}
					var uid []byte
					if f.flags&flagUIDInPayload == 0 {
						uid = f.uid
					}
					if hidden != (uid == nil) {
						t.Fatalf("flags %#x, uid %q", f.flags, f.uid)
					}
					plain, err = l.recv.open(plain[:0], f.hdr, f.body, f.seq)
					if err != nil {
						t.Fatal(err)
					}
					v, err := decodeBeat(plain, uid)
					if err != nil {
						t.Fatal(err)
					}
					checkView(t, v, b, withKeys)
				}
				if _, _, err := readFrame(&stream, buf); err != io.EOF {
					t.Fatalf("after the last frame: %v, want io.EOF", err)
				}
			})
		}
	}
}

// sealBeat builds a heartbeat frame from a payload (UID first) the way the
// write loop does.
func sealBeat(s *sealer, payload []byte, uid string, seq uint64, hideUID bool) []byte {
	var flags byte
	if hideUID && s.aead != nil {
		flags = flagUIDInPayload
		uid = ""
	} else {
		payload = payload[uidPrefixLen(uid):]
	}
	buf := appendHeader(nil, frameHeartbeat, flags, seq, uid, len(payload)+s.overhead())
	return s.seal(buf, buf, payload, seq)
}

// TestHeartbeatFrameSizes measures the bytes a heartbeat takes on the
// wire (header, then sealed payload; aes128, UID "node0", keys like
// "key-0042") and pins them.
func TestHeartbeatFrameSizes(t *testing.T) {
	d, _ := testSession(t, "aes128", "test passphrase")
	for _, n := range []int{0, 10, 1000} {
		for _, claimed := range []bool{false, true} {
			b := testBeat(n)
			b.Claims, b.Votes, b.Known = nil, nil, nil
			if claimed {
				b.Claims = map[string]core.Claim{}
				for _, k := range b.Keys {
					b.Claims[k] = core.Claim{Term: 1, Acting: true}
				}
			}
			full, _ := encodeBeat(b, true)
			short, _ := encodeBeat(b, false)
			fullFrame := sealBeat(d.send, full, b.UID, 1, false)
			shortFrame := sealBeat(d.send, short, b.UID, 2, false)
			fullHidden := sealBeat(d.send, full, b.UID, 3, true)
			shortHidden := sealBeat(d.send, short, b.UID, 4, true)
			what := "master of no key "
			if claimed {
				what = "master of each key"
			}
			t.Logf("%4d keys, %s: full %5d bytes, short %2d bytes (HeaderEncrypted: full %5d, short %2d)",
				n, what, len(fullFrame), len(shortFrame), len(fullHidden), len(shortHidden))
			// header 16 + UID 5 + (sent 8, echo 8, start 8, incarnation
			// 8, flags 1, version 8, priority 8) + GCM tag 16. The full
			// form adds a key count (4), 2+8 bytes a key, a claim count
			// (4), 4+8+1 bytes a claim, a vote count (4; no votes
			// without Quorum) and a metadata count (2).
			wantShort := 16 + 5 + 49 + 16
			wantFull := wantShort + 4 + 10*n + 4 + 4 + 2
			if claimed {
				wantFull += 13 * n
			}
			if len(shortFrame) != wantShort || len(fullFrame) != wantFull {
				t.Errorf("%d keys: full %d short %d, want %d and %d", n, len(fullFrame), len(shortFrame), wantFull, wantShort)
			}
			// With the header encrypted the UID moves into the payload and
			// gains its length byte.
			if len(shortHidden) != wantShort+1 || len(fullHidden) != wantFull+1 {
				t.Errorf("%d keys, HeaderEncrypted: full %d short %d", n, len(fullHidden), len(shortHidden))
			}
		}
	}
}

// TestDecodeBeatTruncated decodes every proper prefix of valid payloads:
// each must fail with ErrBadFrame, none may panic. So must a payload with
// a trailing byte.
func TestDecodeBeatTruncated(t *testing.T) {
	for _, n := range []int{0, 10, 1000} {
		b := testBeat(n)
		b.Leaving = true
		for _, withKeys := range []bool{true, false} {
			p, _ := encodeBeat(b, withKeys)
			for _, inHeader := range []bool{false, true} {
				payload, uid := p, []byte(nil)
				if inHeader {
					payload, uid = p[uidPrefixLen(b.UID):], []byte(b.UID)
				}
				for i := range len(payload) {
					if n >= 1000 && i > 64 && i < len(payload)-64 && i%13 != 0 {
						continue // long: every 13th prefix (13 is prime to the 10- and 12-byte records)
					}
					if _, err := decodeBeat(payload[:i:i], uid); !errors.Is(err, ErrBadFrame) {
						t.Fatalf("keys=%d withKeys=%v uidInHeader=%v: prefix %d/%d: err %v, want ErrBadFrame",
							n, withKeys, inHeader, i, len(payload), err)
					}
				}
				long := append(slices.Clip(payload), 0)
				if _, err := decodeBeat(long, uid); !errors.Is(err, ErrBadFrame) {
					t.Fatalf("keys=%d withKeys=%v: trailing byte accepted: %v", n, withKeys, err)
				}
			}
		}
	}
}

func TestDecodeBeatMalformed(t *testing.T) {
	tb := testBeat(2) // claims: global and key 0; votes: global, key 1
	good, _ := encodeBeat(tb, true)
	shortPayload, _ := encodeBeat(tb, false)
	body := good[uidPrefixLen("node0"):]
	kc := len(shortPayload) - uidPrefixLen("node0") // offset of the key count
	cc := kc + 4 + 2*(2+8)                          // offset of the claim count
	vc := cc + 4 + 2*13                             // offset of the vote count
	uid := []byte("node0")
	mod := func(f func(p []byte) []byte) []byte { return f(slices.Clone(body)) }
	for _, c := range []struct {
		name    string
		payload []byte
		uid     []byte
	}{
		{"empty UID in header", body, []byte{}},
		{"empty UID in payload", append([]byte{0}, body...), nil},
		{"UID longer than the payload", []byte{200, 'a'}, nil},
		{"zero-length key", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[kc+4:], 0)
			return p
		}), uid},
		{"key count too large", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[kc:], 1<<31)
			return p
		}), uid},
		{"repeated key", mod(func(p []byte) []byte {
			p[kc+4+2+8+2+7] = '0' // key-0001 → key-0000
			return p
		}), uid},
		{"keys out of order", mod(func(p []byte) []byte {
			p[kc+4+2+7] = '9' // key-0000 → key-0009, before key-0001
			return p
		}), uid},
		{"key count one too many", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[kc:], 3)
			return p
		}), uid},
		{"key count one too few", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[kc:], 1)
			return p
		}), uid},
		{"claim of a key past the list", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[cc+4+13:], 2)
			return p
		}), uid},
		{"claim without a term", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint64(p[cc+4+4:], 0)
			return p
		}), uid},
		{"claim count too large", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[cc:], 1000)
			return p
		}), uid},
		{"vote count too large", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint32(p[vc:], 3)
			return p
		}), uid},
		{"vote with an empty UID", mod(func(p []byte) []byte {
			p[vc+4+2] = 0 // the global vote: empty key, then the UID length
			return p
		}), uid},
		{"vote without a term", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint64(p[len(p)-2-8:], 0) // before the metadata count
			return p
		}), uid},
		{"metadata count too large", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[len(p)-2:], 1)
			return p
		}), uid},
		{"metadata value past the end", mod(func(p []byte) []byte {
			binary.BigEndian.PutUint16(p[len(p)-2:], 1)
			return append(p, 0, 1, 'k', 0, 9, 'v')
		}), uid},
		{"short form with trailing bytes", append(slices.Clone(shortPayload[uidPrefixLen("node0"):]), 1), uid},
	} {
		if _, err := decodeBeat(c.payload, c.uid); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: err %v, want ErrBadFrame", c.name, err)
		}
	}
	// More claims than keys (and the global one), with the bytes for
	// them: refused before any map is sized for them.
	many := mod(func(p []byte) []byte {
		binary.BigEndian.PutUint32(p[cc:], 4)
		return slices.Insert(p, cc+4+2*13, make([]byte, 2*13)...)
	})
	if _, err := decodeBeat(many, uid); !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), "4 claims for 2 keys") {
		t.Errorf("more claims than keys: err %v, want ErrBadFrame, 4 claims for 2 keys", err)
	}
	v, err := decodeBeat(body, uid)
	if err != nil {
		t.Fatal(err)
	}
	checkView(t, v, tb, true)
}

// frameBytes returns a frame with a raw header: declared length (after
// the prefix), version, then the rest.
func frameBytes(length uint32, version byte, rest ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	b = append(b, version)
	return append(b, rest...)
}

func TestReadFrame(t *testing.T) {
	valid := appendHeader(nil, frameHeartbeat, 0, 9, "node0", 3)
	valid = append(valid, 1, 2, 3)
	badVersion := slices.Clone(valid)
	badVersion[4] = wireVersion + 1
	uidPast := slices.Clone(valid)
	uidPast[15] = 200

	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"half a length", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"oversized", frameBytes(MaxFrameSize+1, wireVersion), ErrFrameTooLarge},
		{"oversized 4 GiB", frameBytes(0xffffffff, wireVersion), ErrFrameTooLarge},
		{"bad version", badVersion, ErrVersion},
		{"version 0", frameBytes(12, 0, make([]byte, 11)...), ErrVersion},
		{"length 0", frameBytes(0, wireVersion), ErrBadFrame},
		{"length 11", frameBytes(11, wireVersion, make([]byte, 10)...), ErrBadFrame},
		{"UID past the end", uidPast, ErrBadFrame},
		{"truncated body", valid[:len(valid)-1], io.ErrUnexpectedEOF},
		{"truncated header", valid[:10], io.ErrUnexpectedEOF},
	} {
		_, _, err := readFrame(bytes.NewReader(c.in), nil)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
	for n := range headerSize - lenSize {
		in := frameBytes(uint32(n), wireVersion, make([]byte, max(n-1, 0))...)
		if _, _, err := readFrame(bytes.NewReader(in), nil); !errors.Is(err, ErrBadFrame) {
			t.Errorf("declared length %d: %v, want ErrBadFrame", n, err)
		}
	}

	f, buf, err := readFrame(bytes.NewReader(valid), nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.typ != frameHeartbeat || f.flags != 0 || f.seq != 9 || string(f.uid) != "node0" ||
		!bytes.Equal(f.body, []byte{1, 2, 3}) || !bytes.Equal(f.hdr, valid[:headerSize+5]) || !bytes.Equal(buf, valid) {
		t.Fatalf("parsed %+v", f)
	}

	// parseFrame checks that the prefix matches the slice it is given.
	if _, err := parseFrame(valid[:len(valid)-1]); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("parseFrame with a short slice: %v", err)
	}
	if _, err := parseFrame(append(slices.Clone(valid), 0)); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("parseFrame with a long slice: %v", err)
	}
}

// TestReadFrameMaxSize: a frame of exactly MaxFrameSize is read; one byte
// more is refused.
func TestReadFrameMaxSize(t *testing.T) {
	body := MaxFrameSize - (headerSize - lenSize)
	in := appendHeader(nil, frameHeartbeat, 0, 1, "", body)
	in = append(in, make([]byte, body)...)
	f, _, err := readFrame(bytes.NewReader(in), nil)
	if err != nil {
		t.Fatalf("frame of MaxFrameSize: %v", err)
	}
	if len(f.body) != body {
		t.Fatalf("body %d bytes, want %d", len(f.body), body)
	}
	in = appendHeader(nil, frameHeartbeat, 0, 1, "", body+1)
	if _, _, err := readFrame(bytes.NewReader(in), nil); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("frame of MaxFrameSize+1: %v", err)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestReadFrameOversizedNoAlloc: an oversized declared length is refused
// before anything is allocated or read past the length.
func TestReadFrameOversizedNoAlloc(t *testing.T) {
	for _, n := range []uint32{MaxFrameSize + 1, 1 << 30, 0xffffffff} {
		in := append(frameBytes(n, wireVersion), make([]byte, 64)...)
		cr := &countingReader{r: bytes.NewReader(in)}
		_, buf, err := readFrame(cr, nil)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("length %d: %v", n, err)
		}
		if cap(buf) > 4096 {
			t.Fatalf("length %d: buffer grown to %d bytes", n, cap(buf))
		}
		if cr.n != lenSize {
			t.Fatalf("length %d: read %d bytes, want only the length", n, cr.n)
		}
	}
	// Measure: 50 refused frames of 1 GiB must not allocate more than a
	// few small objects each (the error).
	in := frameBytes(1<<30, wireVersion)
	buf := make([]byte, 0, 512)
	r := bytes.NewReader(in)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 50 {
		r.Reset(in)
		readFrame(r, buf)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 50*1024 {
		t.Fatalf("50 oversized frames allocated %d bytes", d)
	}
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(in)
		readFrame(r, buf)
	})
	t.Logf("oversized frame: %.0f allocations (the error)", allocs)
	if allocs > 8 {
		t.Fatalf("oversized frame: %.0f allocations", allocs)
	}
}

// TestReadFrameReusesBuffer: in steady state a frame is read into the
// caller's buffer without allocating.
func TestReadFrameReusesBuffer(t *testing.T) {
	d, _ := testSession(t, "aes128", "test passphrase")
	p, _ := encodeBeat(testBeat(0), false)
	frame := sealBeat(d.send, p, "node0", 1, false)
	r := bytes.NewReader(frame)
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		r.Reset(frame)
		f, b, err := readFrame(r, buf)
		if err != nil || f.seq != 1 || &b[0] != &buf[:1][0] {
			panic(fmt.Sprint("readFrame: ", err))
		}
	})
	if allocs != 0 {
		t.Fatalf("readFrame into a large enough buffer: %.0f allocations", allocs)
	}
}

// TestEncodeBeatTooLarge: a key set that cannot fit in one frame is
// refused with ErrKeySetTooLarge instead of producing a frame the peers
// would refuse.
func TestEncodeBeatTooLarge(t *testing.T) {
	big := strings.Repeat("k", MaxKeyLen)
	var keys []string
	for i := 0; len(keys)*(MaxKeyLen+2) < MaxFrameSize; i++ {
		keys = append(keys, fmt.Sprintf("%06d%s", i, big[6:]))
	}
	b := &core.Beat{UID: "node0", Keys: keys}
	if _, err := encodeBeat(b, true); !errors.Is(err, ErrKeySetTooLarge) {
		t.Fatalf("%d keys of %d bytes: %v", len(keys), MaxKeyLen, err)
	}
	if err := fits(b); !errors.Is(err, ErrKeySetTooLarge) {
		t.Fatalf("fits: %v, want ErrKeySetTooLarge as encodeBeat", err)
	}
	if _, err := encodeBeat(b, false); err != nil {
		t.Fatalf("short form of a large key set: %v", err)
	}
	// The largest set that encodeBeat accepts must make a frame that
	// readFrame accepts, even sealed and with the longest UID.
	b.UID = strings.Repeat("u", MaxUIDLen)
	for len(b.Keys) > 0 {
		_, err := encodeBeat(b, true)
		if (err == nil) != (fits(b) == nil) {
			t.Fatalf("%d keys: encodeBeat %v, fits %v", len(b.Keys), err, fits(b))
		}
		if err == nil {
			break
		}
		b.Keys = b.Keys[:len(b.Keys)-1]
	}
	d, _ := testSession(t, "aes256", "test passphrase")
	p, _ := encodeBeat(b, true)
	for _, hidden := range []bool{false, true} {
		frame := sealBeat(d.send, p, b.UID, 1, hidden)
		if _, _, err := readFrame(bytes.NewReader(frame), nil); err != nil {
			t.Fatalf("largest accepted key set (%d keys, headerEncrypted=%v): frame of %d bytes refused: %v",
				len(b.Keys), hidden, len(frame), err)
		}
	}
}

// TestDecodeInternsKeys: a connection's full forms that repeat the same
// keys allocate no string for them after the first (beatFilter.decode);
// the keys decoded are the same either way.
func TestDecodeInternsKeys(t *testing.T) {
	b := testBeat(100)
	p, err := encodeBeat(b, true)
	if err != nil {
		t.Fatal(err)
	}
	var f beatFilter
	first, err := f.decode(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkView(t, first, b, true)
	again, err := f.decode(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkView(t, again, b, true)
	if unsafe.StringData(again.keys[7]) != unsafe.StringData(first.keys[7]) {
		t.Error("the second full form's key is a new string")
	}
	plain := testing.AllocsPerRun(20, func() { decodeBeat(p, nil) })
	interned := testing.AllocsPerRun(20, func() { f.decode(p, nil) })
	if plain-interned < 100 {
		t.Errorf("decoding 100 keys seen before: %v allocations, %v without the connection's keys; want 100 fewer", interned, plain)
	}
}

// TestDeltaRoundTrip: a node's state travels whole, or as what changed
// since a base version: claims and known terms by key position (one that
// went: state 3), a voter's relay table by key (a removed key: the zero
// entry); every truncation of either is refused with ErrBadFrame.
func TestDeltaRoundTrip(t *testing.T) {
	b := testBeat(0)
	b.Keys = []string{"k0", "k1", "k2"}
	b.Claims = map[string]core.Claim{"": {Term: 5, Acting: true}, "k0": {Term: 2}}
	b.Known = map[string]uint64{"k2": 9}
	old := *b
	old.Claims = map[string]core.Claim{"": {Term: 5, Acting: true}, "k1": {Term: 3, Acting: true}}
	old.Known = map[string]uint64{"k0": 1, "k2": 9}
	old.Table = map[string]core.TableEntry{"a": {Rightful: "m1", Acting: "m1", Term: 4}, "b": {Rightful: "m2", Term: 1}, "gone": {Term: 7}}
	b.Table = map[string]core.TableEntry{"a": {Rightful: "m1", Acting: "m1", Term: 4}, "b": {Rightful: "m3", Acting: "m2", Term: 2}, "new": {Rightful: "m9", Term: 1}}
	full, err := encodeBeat(b, true)
	if err != nil {
		t.Fatal(err)
	}
	delta, err := encodeDelta(b, &old, 41)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decodeBeat(full, nil)
	if err != nil || v.base != 0 || !maps.Equal(v.table, b.Table) || v.flags&beatTable == 0 || v.flags&beatDelta != 0 {
		t.Fatalf("whole state: %v base %d flags %#x %v", err, v.base, v.flags, v.table)
	}
	checkView(t, v, b, true)
	want := map[string]core.TableEntry{"b": b.Table["b"], "new": b.Table["new"], "gone": {}}
	// k0: from a known term to a candidacy; k1: its mastership went; the
	// global claim and k2 stay, so they do not travel.
	wantClaims := map[string]core.Claim{"k0": {Term: 2}, "k1": {}}
	wantKnown := map[string]uint64{"k1": 0}
	// A delta decodes on a connection that carried a whole state: the
	// keys are that state's.
	onConn := func(p []byte) (beatView, error) {
		var f beatFilter
		if _, err := f.decode(full, nil); err != nil {
			t.Fatal(err)
		}
		return f.decode(p, nil)
	}
	if _, err := decodeBeat(delta, nil); !errors.Is(err, ErrBadFrame) {
		t.Errorf("a delta without a whole state before it: %v, want ErrBadFrame", err)
	}
	v, err = onConn(delta)
	if err != nil || v.base != 41 || !maps.Equal(v.table, want) || v.flags&beatDelta == 0 ||
		!maps.Equal(v.claims, wantClaims) || !maps.Equal(v.known, wantKnown) || !slices.Equal(v.keys, b.Keys) {
		t.Fatalf("delta: %v base %d %v %v %v, want base 41 %v %v %v", err, v.base, v.table, v.claims, v.known, want, wantClaims, wantKnown)
	}
	if len(delta) >= len(full)-4-3*(2+2) {
		t.Errorf("delta of %d bytes, the whole state %d: the keys travel", len(delta), len(full))
	}
	// Without a table: the claims alone.
	b.Table, old.Table = nil, nil
	claimsOnly, err := encodeDelta(b, &old, 42)
	if err != nil {
		t.Fatal(err)
	}
	if v, err = onConn(claimsOnly); err != nil || v.base != 42 || v.table != nil || v.flags&beatTable != 0 || !maps.Equal(v.claims, wantClaims) {
		t.Fatalf("claims delta: %v base %d table %v claims %v", err, v.base, v.table, v.claims)
	}
	for _, p := range [][]byte{full, delta, claimsOnly} {
		for i := range len(p) {
			if _, err := onConn(p[:i:i]); !errors.Is(err, ErrBadFrame) {
				t.Fatalf("prefix %d/%d: %v, want ErrBadFrame", i, len(p), err)
			}
		}
	}
	// A delta across other keys, or from a state with no table to one
	// with, is not made.
	other := old
	other.Keys = []string{"k0"}
	if _, err := encodeDelta(b, &other, 43); err == nil {
		t.Error("a delta across other keys was made")
	}
	// The delta flag without a base, or state 3 in a whole state, is
	// refused; so is a state with the delta flag cleared (its base then
	// reads as claims).
	at := uidPrefixLen(b.UID) + offFlags
	noFlag, flagNoBase := slices.Clone(delta), slices.Clone(full)
	noFlag[at] &^= beatDelta
	flagNoBase[at] |= beatDelta
	for _, p := range [][]byte{noFlag, flagNoBase} {
		if _, err := onConn(p); !errors.Is(err, ErrBadFrame) {
			t.Errorf("flags %#x: %v, want ErrBadFrame", p[at], err)
		}
	}
}

// TestClaimsInOrder: a state lists the global claim first, then one entry
// per key by position; a repeated or unordered position is refused.
func TestClaimsInOrder(t *testing.T) {
	b := testBeat(0)
	b.Keys = []string{"k0", "k1", "k2"}
	b.Claims = map[string]core.Claim{"": {Term: 5, Acting: true}, "k0": {Term: 2}}
	b.Known = map[string]uint64{"k2": 9}
	p, err := encodeBeat(b, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeBeat(p, nil); err != nil {
		t.Fatal(err)
	}
	// The entries start after the key list and the count.
	at := uidPrefixLen(b.UID) + fixedBeat + 4
	for _, k := range b.Keys {
		at += 2 + len(k)
	}
	at += 4
	swap := slices.Clone(p) // k0 (position 0) and k2 (position 2) swapped
	copy(swap[at+13:at+13+4], p[at+26:at+26+4])
	copy(swap[at+26:at+26+4], p[at+13:at+13+4])
	repeat := slices.Clone(p) // k2's entry names position 0 again
	copy(repeat[at+26:at+26+4], p[at+13:at+13+4])
	global := slices.Clone(p) // the global claim last
	copy(global[at:at+4], p[at+26:at+26+4])
	copy(global[at+26:at+26+4], p[at:at+4])
	for name, q := range map[string][]byte{"swapped": swap, "repeated": repeat, "global last": global} {
		if _, err := decodeBeat(q, nil); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v, want ErrBadFrame", name, err)
		}
	}
}

// TestHeaderEncryptedOnTheWire taps the link: with HeaderEncrypted no
// node's UID travels in clear; without it, the UIDs are readable.
func TestHeaderEncryptedOnTheWire(t *testing.T) {
	for _, hidden := range []bool{false, true} {
		t.Run(fmt.Sprintf("HeaderEncrypted=%v", hidden), func(t *testing.T) {
			var mu sync.Mutex
			var wire []byte
			c, r := relayedPair(t, func(i int, o *Options) { o.HeaderEncrypted = hidden; o.Keys = []string{"secret-key-name"} })
			r.SetFilter(func(_ int, _ relay.Dir, src io.Reader) io.Reader {
				return io.TeeReader(src, writerFunc(func(b []byte) {
					mu.Lock()
					wire = append(wire, b...)
					mu.Unlock()
				}))
			})
			c.start()
			c.waitMaster(c.nodes[0])
			mu.Lock()
			defer mu.Unlock()
			for _, s := range []string{"node0", "node1"} {
				if got := bytes.Contains(wire, []byte(s)); got == hidden {
					t.Errorf("%q in clear on the wire: %v", s, got)
				}
			}
			if bytes.Contains(wire, []byte("secret-key-name")) {
				t.Error("a key name travels in clear")
			}
		})
	}
}

// writerFunc is an io.Writer that hands each write to a function.
type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) {
	f(b)
	return len(b), nil
}

// TestKeyListDecodedOnce: a connection's full forms that repeat the key
// list reuse the list decoded last (the same slice); one that names
// other keys, or fewer, or more, is decoded anew, and each decodes as
// without the connection's memory.
func TestKeyListDecodedOnce(t *testing.T) {
	var f beatFilter
	var last []string
	for i, n := range []int{40, 40, 41, 3, 3, 0, 40} {
		b := testBeat(n)
		b.Version = uint64(i + 1)
		b.Claims[""] = core.Claim{Term: uint64(i + 1), Acting: true} // other claims: another frame
		p, err := encodeBeat(b, true)
		if err != nil {
			t.Fatal(err)
		}
		want, err := decodeBeat(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.decode(p, nil)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		checkView(t, got, b, true)
		if !slices.Equal(got.keys, want.keys) || got.claims[""] != want.claims[""] {
			t.Fatalf("frame %d: keys %v claims %v, want %v %v", i, got.keys, got.claims, want.keys, want.claims)
		}
		repeat := i > 0 && slices.Equal(got.keys, last) && len(got.keys) > 0
		if same := len(got.keys) > 0 && len(last) > 0 && &got.keys[0] == &last[0]; same != repeat {
			t.Fatalf("frame %d (%d keys): the list decoded last reused %v, want %v", i, n, same, repeat)
		}
		last = got.keys
	}
}

// TestDeltaSize: with 1,000 keys of 8 bytes, a node's whole state is
// 23,082 bytes; the delta after one key's term moved, 86
// (docs/performance.md quotes both).
func TestDeltaSize(t *testing.T) {
	b := testBeat(0)
	b.Keys, b.Claims, b.Known = nil, map[string]core.Claim{"": {Term: 3, Acting: true}}, map[string]uint64{}
	for i := range 1000 {
		k := fmt.Sprintf("job-%04d", i)
		b.Keys = append(b.Keys, k)
		b.Known[k] = 7
	}
	b.Votes = nil
	full, err := encodeBeat(b, true)
	if err != nil {
		t.Fatal(err)
	}
	next := *b
	next.Version++
	next.Known = maps.Clone(b.Known)
	next.Known["job-0500"] = 8
	delta, err := encodeDelta(&next, b, b.Version)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("whole state %d bytes, delta %d bytes", len(full), len(delta))
	if len(full) != 23082 || len(delta) != 86 {
		t.Errorf("whole state %d bytes, delta %d bytes; docs/performance.md says 23,082 and 86", len(full), len(delta))
	}
}

// TestInternOwnKeys: a frame's key that this node holds decodes as the
// node's own string (the same bytes in memory), so that the core's maps,
// keyed by its own strings, compare pointers; another key is interned per
// connection as before.
func TestInternOwnKeys(t *testing.T) {
	c := core.New(core.Config{UID: "self", Start: 1, Inc: 1, Interval: core.Duration(100e6), Wait: core.Duration(300e6)}, []string{"a", "bb"}, nil)
	c.Start(1, nil)
	ki := c.Snap().KI
	in := &keyIntern{own: ki}
	own := ki.List[slices.Index(ki.List, "bb")]
	if k := in.key([]byte("bb")); k != "bb" || unsafe.StringData(k) != unsafe.StringData(own) {
		t.Fatalf("own key %q at %p, want the node's string at %p", k, unsafe.StringData(k), unsafe.StringData(own))
	}
	first := in.key([]byte("zz"))
	if again := in.key([]byte("zz")); first != "zz" || unsafe.StringData(again) != unsafe.StringData(first) {
		t.Fatalf("another key %q not interned per connection", again)
	}
	if len(in.m) != 1 {
		t.Fatalf("%d keys interned per connection, want 1 (own keys are not)", len(in.m))
	}
}

// TestReadTableOwnKeys: a relay table's keys that are this node's own
// come back as its own strings (the core's maps compare pointers), found
// by a cursor over the sorted keys; a table out of order, or with keys
// this node lacks, decodes the same; an entry whose master is the node
// named, or another of the same length, decodes as sent; a key repeated
// is refused.
func TestReadTableOwnKeys(t *testing.T) {
	own := core.New(core.Config{UID: "self", Interval: core.Duration(time.Second), Wait: core.Duration(3 * time.Second)},
		[]string{"b", "d", "f"}, nil).Snap().KI
	want := map[string]core.TableEntry{
		"a": {Rightful: "m1", Term: 1}, "b": {Rightful: "m2", Acting: "m2", Term: 2}, "c": {Term: 3},
		"d": {Rightful: "m1", Term: 4}, "e": {Rightful: "m1", Acting: "m4", Term: 7}, "f": {Acting: "m3", Term: 5},
		"g": {Rightful: "m2", Term: 6},
	}
	if _, _, _, err := readTable(appendTableIn(nil, want, 0, []string{"a", "b", "b", "c", "d", "e", "f"}), &keyIntern{own: own}); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("a key repeated: %v, want ErrBadFrame", err)
	}
	sorted := appendTable(nil, want, 0)
	// The same entries in reverse order, as a peer that does not sort
	// would send them.
	keys := slices.Sorted(maps.Keys(want))
	slices.Reverse(keys)
	reversed := appendTableIn(nil, want, 0, keys)
	for name, p := range map[string][]byte{"sorted": sorted, "reversed": reversed} {
		got, _, rest, err := readTable(p, &keyIntern{own: own})
		if err != nil || len(rest) != 0 {
			t.Fatalf("%s: %v, %d bytes left", name, err, len(rest))
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
		for k := range got {
			if i, ok := own.Idx[k]; ok && unsafe.StringData(k) != unsafe.StringData(own.List[i]) {
				t.Errorf("%s: key %q is not this node's own string", name, k)
			}
		}
	}
}

// TestRecycleDeltaTable: the elector gives a large delta's map back once
// the core took it in (recycleTable), and the next delta decodes into it:
// the map is cleared, a whole table's map (which the core keeps) is not,
// and the core's copy of the voter's table is intact after the map was
// recycled and reused.
func TestRecycleDeltaTable(t *testing.T) {
	keys := make([]string, 2*pooledDelta)
	for i := range keys {
		keys[i] = fmt.Sprintf("job-%03d", i)
	}
	now := int64(time.Second)
	c := core.New(core.Config{UID: "member", Start: 2, Inc: 1, Interval: core.Duration(100 * time.Millisecond),
		Wait: core.Duration(300 * time.Millisecond), Voters: map[string]bool{"v0": true}}, keys, nil)
	c.Start(now, []string{"v0"})
	c.Up(now, 1, "v0", 0)
	beat := func(ver uint64, table map[string]core.TableEntry) *core.Beat {
		return &core.Beat{UID: "v0", Start: 1, Inc: 1, Version: ver, Claims: map[string]core.Claim{"": {Term: 1, Acting: true}},
			Known: map[string]uint64{}, Table: table}
	}
	table := func(uid string, term uint64, ks []string) map[string]core.TableEntry {
		tab := make(map[string]core.TableEntry, len(ks))
		for _, k := range ks {
			tab[k] = core.TableEntry{Rightful: uid, Acting: uid, Term: term}
		}
		return tab
	}
	var f beatFilter
	f.keys.own = c.Snap().KI
	take := func(p []byte) (core.Msg, map[string]core.TableEntry) {
		t.Helper()
		v, err := f.decode(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := v.msg("v0")
		decoded := m.Table
		c.Recv(now, now, 1, &m)
		recycleTable(&m)
		return m, decoded
	}
	// The whole table: kept by the core, not recycled.
	whole := beat(1, table("m1", 1, keys))
	p, err := encodeBeat(whole, true)
	if err != nil {
		t.Fatal(err)
	}
	m, decoded := take(p)
	if m.Table == nil || len(decoded) != len(keys) {
		t.Fatalf("a whole table was recycled: %d entries left of %d", len(decoded), len(keys))
	}
	// Deltas, each changing every other key of the one before: each is
	// pooledDelta entries, and its map is recycled and cleared.
	old := whole
	for ver := uint64(2); ver < 6; ver++ {
		next := maps.Clone(old.Table)
		changed := map[string]core.TableEntry{}
		for i := int(ver % 2); i < len(keys); i += 2 {
			e := core.TableEntry{Rightful: fmt.Sprintf("m%d", ver), Acting: fmt.Sprintf("m%d", ver), Term: ver}
			next[keys[i]], changed[keys[i]] = e, e
		}
		nb := beat(ver, next)
		p, err := encodeDelta(nb, old, old.Version)
		if err != nil {
			t.Fatal(err)
		}
		old = nb
		m, decoded := take(p)
		if m.Table != nil || len(decoded) != 0 {
			t.Fatalf("version %d: a delta of %d entries was not recycled (%d left)", ver, len(changed), len(decoded))
		}
		// The core's copy is the voter's table as it stands.
		for _, k := range keys {
			in := c.Inspect(now, k)
			if len(in.Peers) != 1 || in.Peers[0].Table != next[k] {
				t.Fatalf("version %d: %s: the core holds %+v, the voter's table %+v", ver, k, in.Peers, next[k])
			}
		}
	}
}

// TestKeyListsShared: a node's connections share the key lists they
// decoded (keyLists): a peer's list that another connection decoded
// comes back as that slice, not decoded again; another list is decoded
// (and shared in turn); a list that does not decode is refused on every
// connection, shared or not.
func TestKeyListsShared(t *testing.T) {
	var lists keyLists
	conns := make([]beatFilter, 3)
	for i := range conns {
		conns[i].keys.lists = &lists
	}
	frame := func(n int) []byte {
		b := testBeat(n)
		p, err := encodeBeat(b, true)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := frame(40), frame(41)
	va, err := conns[0].decode(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(conns); i++ {
		v, err := conns[i].decode(a, nil)
		if err != nil || !slices.Equal(v.keys, va.keys) || &v.keys[0] != &va.keys[0] {
			t.Fatalf("connection %d: %v, keys %v: want connection 0's list itself", i, err, v.keys)
		}
	}
	vb, err := conns[1].decode(b, nil)
	if err != nil || len(vb.keys) != 41 || &vb.keys[0] == &va.keys[0] {
		t.Fatalf("another list: %v, %d keys (the first list's: %v)", err, len(vb.keys), &vb.keys[0] == &va.keys[0])
	}
	if v, err := conns[2].decode(b, nil); err != nil || &v.keys[0] != &vb.keys[0] {
		t.Fatalf("the other list on connection 2: %v, not connection 1's", err)
	}
	// The keys out of order (two swapped): refused, whoever decodes it.
	bad := testBeat(40)
	bad.Keys[3], bad.Keys[4] = bad.Keys[4], bad.Keys[3]
	bad.Claims, bad.Known = nil, nil
	p, err := encodeBeat(bad, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := range conns {
		if _, err := conns[i].decode(p, nil); !errors.Is(err, ErrBadFrame) {
			t.Fatalf("connection %d: unsorted keys: %v, want ErrBadFrame", i, err)
		}
	}
	for _, short := range [][]byte{nil, {0, 0}, {0, 0, 0, 2, 0, 1, 'a'}, {0, 0, 0, 1, 0, 9, 'a'}} {
		if _, ok := keyListLen(short); ok {
			t.Errorf("keyListLen(%v): a length for a list cut short", short)
		}
	}
	if n, ok := keyListLen([]byte{0, 0, 0, 1, 0, 1, 'a', 'x'}); !ok || n != 7 {
		t.Errorf("keyListLen of one key \"a\": %d %v, want 7 true", n, ok)
	}
}
