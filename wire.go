package msc

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sync"

	"github.com/msc-go/msc/internal/core"
)

// The wire format. Every constant here is pinned by TestWireConstants; the
// format is described in README.md ("The wire").
const (
	// wireVersion is the first byte after the length; a frame of another
	// version closes the connection with ErrVersion.
	wireVersion byte = 4

	// Frame types. ONLY APPEND TO THIS LIST.
	frameHello     byte = 1 // handshake: algorithm id and a random nonce, in clear
	frameHeartbeat byte = 2 // heartbeat: sealed payload

	// Header flags.
	flagUIDInPayload byte = 1 // HeaderEncrypted: the sender UID is sealed in the payload
	// flagNamedOnly: the sender, a member, reads the masters of the keys
	// from another voter: of the receiver's table, send it only the
	// entries that name it (core.NamedOnly). A node that does not know
	// the flag ignores it, and sends every entry.
	flagNamedOnly byte = 2

	// lenSize is the size of the length prefix.
	lenSize = 4
	// headerSize is the fixed part of a frame header: length, version,
	// type, flags, sequence number, UID length. The sender UID follows.
	headerSize = lenSize + 1 + 1 + 1 + 8 + 1

	// MaxFrameSize is the largest frame accepted, in bytes after the length
	// prefix. A peer that declares a longer frame is disconnected before
	// anything is allocated.
	MaxFrameSize = 1 << 20

	// firstFrameMax is the largest first frame after the handshake: a
	// short heartbeat (no key set) always fits. Until that frame has
	// authenticated the connection, a peer cannot make the node read a
	// large one.
	firstFrameMax = 1024

	// nonceSize is the size of each side's handshake nonce.
	nonceSize = 16
	// helloSize is the size of a hello body: algorithm id, nonce.
	helloSize = 1 + nonceSize

	// Heartbeat flags.
	beatLeaving  byte = 1   // the sender is stopping: count it dead now
	beatKeys     byte = 2   // the full state follows: keys, claims, votes, metadata
	beatReply    byte = 4   // sent at once in answer to a claimant's frame (Quorum)
	beatObserver byte = 8   // the sender never claims, and does not vote (Options.Observer)
	beatLinked   byte = 16  // the sender has identified the receiver on this connection
	beatRedial   byte = 32  // the sender found this connection silent: it closes it and redials
	beatTable    byte = 64  // with beatKeys: a voter's relay table follows the votes (Options.Voters)
	beatDelta    byte = 128 // with beatKeys: no keys (the base's), and claims, known terms and table hold what changed since a base version

)

// frame is a parsed frame; its slices alias the read buffer.
type frame struct {
	typ   byte
	flags byte
	seq   uint64
	uid   []byte // sender UID from the header, empty if in payload
	hdr   []byte // the header bytes, authenticated as additional data
	body  []byte
}

// appendHeader appends a frame header for a body of bodyLen bytes.
func appendHeader(dst []byte, typ, flags byte, seq uint64, uid string, bodyLen int) []byte {
	n := headerSize - lenSize + len(uid) + bodyLen
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, wireVersion, typ, flags)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	dst = append(dst, byte(len(uid)))
	return append(dst, uid...)
}

// readFrame reads one frame of at most MaxFrameSize bytes into buf and
// parses its header.
func readFrame(r io.Reader, buf []byte) (frame, []byte, error) {
	return readFrameLimit(r, buf, MaxFrameSize)
}

// readFrameLimit reads one frame of at most limit bytes (after the length
// prefix) into buf and parses its header, version first. It checks the
// declared length before reading on, and grows buf with the bytes that
// arrive, not with the length a peer declares: a peer that declares a
// large frame and stalls holds no more memory than it sent.
func readFrameLimit(r io.Reader, buf []byte, limit int) (frame, []byte, error) {
	var f frame
	if cap(buf) < headerSize {
		buf = make([]byte, 0, 512)
	}
	buf = buf[:lenSize]
	if _, err := io.ReadFull(r, buf); err != nil {
		return f, buf, err
	}
	n := int(binary.BigEndian.Uint32(buf))
	if n > limit {
		return f, buf, fmt.Errorf("%w: %d bytes declared, limit %d", ErrFrameTooLarge, n, limit)
	}
	if n < headerSize-lenSize {
		return f, buf, fmt.Errorf("%w: length %d shorter than a header", ErrBadFrame, n)
	}
	for have := 0; have < n; {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(lenSize+n, 2*cap(buf))-len(buf))
		}
		chunk := min(n-have, cap(buf)-len(buf))
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+chunk])
		buf = buf[:len(buf)+m]
		have += m
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return f, buf, err
		}
	}
	f, err := parseFrame(buf)
	return f, buf, err
}

// parseFrame parses a whole frame, length prefix included.
func parseFrame(b []byte) (frame, error) {
	var f frame
	if len(b) < headerSize {
		return f, fmt.Errorf("%w: %d bytes, shorter than a header", ErrBadFrame, len(b))
	}
	if int(binary.BigEndian.Uint32(b)) != len(b)-lenSize {
		return f, fmt.Errorf("%w: length prefix does not match", ErrBadFrame)
	}
	if b[4] != wireVersion {
		return f, fmt.Errorf("%w: %d (this node speaks %d)", ErrVersion, b[4], wireVersion)
	}
	f.typ, f.flags = b[5], b[6]
	f.seq = binary.BigEndian.Uint64(b[7:])
	ul := int(b[15])
	if len(b) < headerSize+ul {
		return f, fmt.Errorf("%w: UID runs past the frame", ErrBadFrame)
	}
	f.uid = b[headerSize : headerSize+ul]
	f.hdr = b[:headerSize+ul]
	f.body = b[headerSize+ul:]
	return f, nil
}

// Offsets in a payload after the UID prefix: the send time and the echo,
// which each frame fills in.
const (
	offSent  = 0
	offEcho  = 8
	offFlags = 32
	// fixedBeat is the size of the fixed part after the UID prefix: sent,
	// echo, start, incarnation, flags, version, priority.
	fixedBeat = 8 + 8 + 8 + 8 + 1 + 8 + 8
	// globalClaim is the key position of the global mastership's claim.
	globalClaim = math.MaxUint32
)

// encodeBeat returns the heartbeat payload, UID first, with zero send
// time and echo. With withKeys the full state (keys, claims, votes) is
// included. The UID prefix is uidPrefixLen(b.uid) bytes long; a sender
// whose header carries the UID sends the payload without it.
func encodeBeat(b *core.Beat, withKeys bool) ([]byte, error) {
	return encodeState(b, withKeys, nil, 0)
}

// encodeDelta returns the full form of b that holds, of its claims, known
// terms and relay table, only what differs from old, the state of version
// base: a connection that last sent base sends it instead of the whole
// state (writer.plan). Its keys must be old's (the claims go by key
// position), and both have a table or neither.
func encodeDelta(b, old *core.Beat, base uint64) ([]byte, error) {
	if !slices.Equal(b.Keys, old.Keys) || (b.Table == nil) != (old.Table == nil) || base == 0 {
		return nil, fmt.Errorf("%w: a delta across keys or tables", ErrBadFrame)
	}
	return encodeState(b, true, old, base)
}

// claimState is the claims section's entry for key k of b: its term and
// state (0 a candidacy, 1 a mastership, 2 no claim: the highest term b
// knows of); ok false if b has neither.
func claimState(b *core.Beat, k string) (term uint64, state byte, ok bool) {
	if c, ok := b.Claims[k]; ok {
		if c.Acting {
			return c.Term, 1, true
		}
		return c.Term, 0, true
	}
	if t, ok := b.Known[k]; ok {
		return t, 2, true
	}
	return 0, 0, false
}

// stateSize is the size of b's payload with the given table, at most
// (a delta's keys do not travel; old: the state a delta is from).
func stateSize(b *core.Beat, withKeys bool, table map[string]core.TableEntry, old *core.Beat) int {
	size := uidPrefixLen(b.UID) + fixedBeat
	if !withKeys {
		return size
	}
	size += 4 + 8 + 4 + 4
	for _, k := range b.Keys {
		size += 2 + len(k)
	}
	size += (len(b.Claims) + len(b.Known)) * (4 + 8 + 1)
	if old != nil {
		size += (len(old.Claims) + len(old.Known)) * (4 + 8 + 1)
	}
	for k, v := range b.Votes {
		size += 2 + len(k) + 1 + len(v.UID) + 8 + 8
	}
	size += metaSize(b.Meta)
	if table != nil {
		size += 4 + 8
		for k, e := range table {
			size += 2 + len(k) + 8 + 1 + len(e.Rightful) + 1 + len(e.Acting)
		}
	}
	return size
}

// fits reports ErrKeySetTooLarge if b's full form cannot be sent in a
// frame; what encodeBeat(b, true) would report.
func fits(b *core.Beat) error {
	if stateSize(b, true, b.Table, nil)+headerSize+64 > MaxFrameSize {
		return ErrKeySetTooLarge
	}
	return nil
}

// encodeState is encodeBeat, or with old the delta of b since old, the
// state of version base (encodeDelta).
func encodeState(b *core.Beat, withKeys bool, old *core.Beat, base uint64) ([]byte, error) {
	var te *tableEntries
	if withKeys && b.Table != nil {
		table := b.Table
		if old != nil {
			table = tableDelta(b, old)
		}
		e := encodeEntries(table)
		te = &e
	}
	return encodeWith(b, withKeys, old, base, te)
}

// tableDelta returns the entries of b's table that differ from old's, a
// removed one as the zero entry.
func tableDelta(b, old *core.Beat) map[string]core.TableEntry {
	keys := tableChanged(b, old)
	table := make(map[string]core.TableEntry, len(keys))
	for _, k := range keys {
		table[k] = b.Table[k] // a removed one: absent, the zero entry
	}
	return table
}

// encodeWith is encodeState with the table's entries given, encoded
// (with old, those the delta carries; nil: no table).
func encodeWith(b *core.Beat, withKeys bool, old *core.Beat, base uint64, te *tableEntries) ([]byte, error) {
	size := stateSize(b, withKeys, nil, old)
	if withKeys && te != nil {
		size += 8 + 4 + len(te.b)
	}
	if size+headerSize+64 > MaxFrameSize {
		return nil, ErrKeySetTooLarge
	}
	if old != nil {
		// A delta is the few entries that changed: size is what a whole
		// state would take, which the delta would keep alive.
		size = min(size, 256)
	}
	p := make([]byte, 0, size)
	p = append(p, byte(len(b.UID)))
	p = append(p, b.UID...)
	p = append(p, make([]byte, 16)...) // sent, echo
	p = binary.BigEndian.AppendUint64(p, uint64(b.Start))
	p = binary.BigEndian.AppendUint64(p, b.Inc)
	var fl byte
	if b.Leaving {
		fl |= beatLeaving
	}
	if withKeys {
		fl |= beatKeys
		if te != nil {
			fl |= beatTable
		}
		if old != nil {
			fl |= beatDelta
		}
	}
	if b.Observer {
		fl |= beatObserver
	}
	p = append(p, fl)
	p = binary.BigEndian.AppendUint64(p, b.Version)
	p = binary.BigEndian.AppendUint64(p, uint64(b.Prio))
	if !withKeys {
		return p, nil
	}
	if old != nil {
		// A delta's keys are its base's: the receiver has them.
		p = binary.BigEndian.AppendUint64(p, base)
	} else {
		p = binary.BigEndian.AppendUint32(p, uint32(len(b.Keys)))
		for _, k := range b.Keys {
			p = binary.BigEndian.AppendUint16(p, uint16(len(k)))
			p = append(p, k...)
		}
	}
	// Claims and known terms, by key position, in key order, the global
	// one first: (position, term, state) with state 0 a candidacy, 1 a
	// mastership, 2 no claim (the highest term the sender knows of); in a
	// delta, only the positions that changed, and state 3 (term 0) where
	// old had an entry and b has none.
	at := len(p)
	p = binary.BigEndian.AppendUint32(p, 0) // the count, set below
	n, seen := 0, 0
	add := func(pos uint32, k string) {
		term, state, ok := claimState(b, k)
		if ok {
			seen++
		}
		if old != nil {
			ot, os, had := claimState(old, k)
			if ok == had && term == ot && state == os {
				return
			}
			if !ok {
				if !had {
					return
				}
				state = 3
			}
		} else if !ok {
			return
		}
		p = binary.BigEndian.AppendUint32(p, pos)
		p = binary.BigEndian.AppendUint64(p, term)
		p = append(p, state)
		n++
	}
	add(globalClaim, "")
	for i, k := range b.Keys {
		if old == nil && seen == len(b.Claims)+len(b.Known) {
			break
		}
		add(uint32(i), k)
	}
	if seen != len(b.Claims)+len(b.Known) {
		return nil, fmt.Errorf("%w: a claim or term of a key the node does not hold, or both", ErrBadFrame)
	}
	binary.BigEndian.PutUint32(p[at:], uint32(n))
	// Votes, by key name, sorted.
	vk := make([]string, 0, len(b.Votes))
	for k := range b.Votes {
		vk = append(vk, k)
	}
	slices.Sort(vk)
	p = binary.BigEndian.AppendUint32(p, uint32(len(vk)))
	for _, k := range vk {
		v := b.Votes[k]
		p = binary.BigEndian.AppendUint16(p, uint16(len(k)))
		p = append(p, k...)
		p = append(p, byte(len(v.UID)))
		p = append(p, v.UID...)
		p = binary.BigEndian.AppendUint64(p, v.Inc)
		p = binary.BigEndian.AppendUint64(p, v.Term)
	}
	if te != nil {
		p = binary.BigEndian.AppendUint64(p, base)
		p = binary.BigEndian.AppendUint32(p, uint32(te.n))
		p = append(p, te.b...)
	}
	return appendMeta(p, b.Meta), nil
}

// appendTable appends a voter's relay table, by key name, sorted: the
// base version (0: the whole table; else the changes since that version,
// a removed entry all zero), a count, then (key length uint16, key, term
// uint64, rightful UID length uint8, UID, acting UID length uint8, UID).
func appendTable(p []byte, t map[string]core.TableEntry, base uint64) []byte {
	return appendTableIn(p, t, base, slices.Sorted(maps.Keys(t)))
}

// appendTableIn is appendTable with t's entries in the order of keys (a
// test sends a table out of order).
func appendTableIn(p []byte, t map[string]core.TableEntry, base uint64, keys []string) []byte {
	p = binary.BigEndian.AppendUint64(p, base)
	p = binary.BigEndian.AppendUint32(p, uint32(len(keys)))
	return appendEntries(p, t, keys)
}

// appendEntries appends t's entries in the order of keys, as a table
// has them after its base and count.
func appendEntries(p []byte, t map[string]core.TableEntry, keys []string) []byte {
	for _, k := range keys {
		e := t[k]
		p = binary.BigEndian.AppendUint16(p, uint16(len(k)))
		p = append(p, k...)
		p = binary.BigEndian.AppendUint64(p, e.Term)
		p = append(p, byte(len(e.Rightful)))
		p = append(p, e.Rightful...)
		p = append(p, byte(len(e.Acting)))
		p = append(p, e.Acting...)
	}
	return p
}

// tableEntries is a table's entries encoded, by key name, sorted
// (appendEntries): n of them in b.
type tableEntries struct {
	n int
	b []byte
}

// encodeEntries encodes t's entries.
func encodeEntries(t map[string]core.TableEntry) tableEntries {
	keys := slices.Sorted(maps.Keys(t))
	size := 0
	for k, e := range t {
		size += 2 + len(k) + 8 + 1 + len(e.Rightful) + 1 + len(e.Acting)
	}
	return tableEntries{n: len(keys), b: appendEntries(make([]byte, 0, size), t, keys)}
}

// decodeTable decodes a relay table (appendTable) and its base version;
// it returns what follows it. Keys and UIDs are taken from in, where seen
// before.
func decodeTable(p []byte, in *keyIntern, delta bool) (map[string]core.TableEntry, uint64, []byte, error) {
	t, base, p, err := readTable(p, in)
	if err == nil && (base != 0) != delta {
		err = fmt.Errorf("%w: table base %d with delta flag %v", ErrBadFrame, base, delta)
	}
	return t, base, p, err
}

func readTable(p []byte, in *keyIntern) (map[string]core.TableEntry, uint64, []byte, error) {
	if len(p) < 12 {
		return nil, 0, nil, fmt.Errorf("%w: truncated table count", ErrBadFrame)
	}
	base := binary.BigEndian.Uint64(p)
	n := binary.BigEndian.Uint32(p[8:])
	p = p[12:]
	if uint64(n)*(2+1+8+1+1) > uint64(len(p)) {
		return nil, 0, nil, fmt.Errorf("%w: %d table entries cannot fit in %d bytes", ErrBadFrame, n, len(p))
	}
	t := tableMap(int(n), base != 0)
	// The keys come sorted, as this node's own (keyIntern.own): a cursor
	// over those finds each key without hashing it.
	var own []string
	if in != nil && in.own != nil {
		own = in.own.List
	}
	next := 0
	key := func(b []byte) string {
		for next < len(own) && own[next] < string(b) {
			next++
		}
		if next < len(own) && own[next] == string(b) {
			next++
			return own[next-1]
		}
		return in.key(b)
	}
	str := func(l int, intern func([]byte) string) (string, bool) {
		if len(p) < l {
			return "", false
		}
		s := ""
		if l > 0 {
			s = intern(p[:l])
		}
		p = p[l:]
		return s, true
	}
	for j := range int(n) {
		if len(p) < 2 {
			return nil, 0, nil, fmt.Errorf("%w: truncated table entry", ErrBadFrame)
		}
		kl := int(binary.BigEndian.Uint16(p))
		p = p[2:]
		k, ok := str(kl, key)
		if !ok || kl == 0 || len(p) < 9 {
			return nil, 0, nil, fmt.Errorf("%w: truncated table entry", ErrBadFrame)
		}
		var e core.TableEntry
		e.Term = binary.BigEndian.Uint64(p)
		rl := int(p[8])
		p = p[9:]
		if e.Rightful, ok = str(rl, in.uid); !ok || len(p) < 1 {
			return nil, 0, nil, fmt.Errorf("%w: truncated table entry", ErrBadFrame)
		}
		al := int(p[0])
		p = p[1:]
		if al == rl && al > 0 && len(p) >= al && string(p[:al]) == e.Rightful {
			// The master is the node named (most entries): one string.
			e.Acting, p = e.Rightful, p[al:]
		} else if e.Acting, ok = str(al, in.uid); !ok {
			return nil, 0, nil, fmt.Errorf("%w: truncated table entry", ErrBadFrame)
		}
		if t[k] = e; len(t) != j+1 {
			return nil, 0, nil, fmt.Errorf("%w: table key %q repeated", ErrBadFrame, k)
		}
	}
	return t, base, p, nil
}

// deltaMaps holds the maps of large table deltas that the elector has
// taken in (recycleTable), for readTable to decode the next into: while
// a cluster of members converges, each member takes in deltas of
// hundreds of entries from each voter, and their maps were half of what
// it allocated (BenchmarkTakeTableDelta). A delta's map is garbage once
// the core took it in: the core merges it into the table the connection
// carried (core.Msg.Base). A whole table's map is kept by the core.
var deltaMaps sync.Pool

// pooledDelta is the smallest delta whose map is pooled: clearing a map
// costs its capacity, more than making a small one.
const pooledDelta = 32

// tableMap returns an empty map for a table of n entries.
func tableMap(n int, delta bool) map[string]core.TableEntry {
	if delta && n >= pooledDelta {
		if t, ok := deltaMaps.Get().(map[string]core.TableEntry); ok {
			return t
		}
	}
	return make(map[string]core.TableEntry, n)
}

// recycleTable gives the map of b's table back to readTable once the
// core has taken b in, if b is a large delta.
func recycleTable(b *core.Msg) {
	if b.Base == 0 || len(b.Table) < pooledDelta {
		return
	}
	clear(b.Table)
	deltaMaps.Put(b.Table)
	b.Table = nil
}

// MaxMetaSize is the largest Options.Meta, encoded: a uint16 count, then
// each key and value with a uint16 length.
const MaxMetaSize = 4096

func metaSize(meta map[string]string) int {
	n := 2
	for k, v := range meta {
		n += 2 + len(k) + 2 + len(v)
	}
	return n
}

// appendMeta appends metadata, sorted by key.
func appendMeta(p []byte, meta map[string]string) []byte {
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	p = binary.BigEndian.AppendUint16(p, uint16(len(keys)))
	for _, k := range keys {
		p = binary.BigEndian.AppendUint16(p, uint16(len(k)))
		p = append(p, k...)
		p = binary.BigEndian.AppendUint16(p, uint16(len(meta[k])))
		p = append(p, meta[k]...)
	}
	return p
}

// decodeMeta decodes the metadata that ends a full heartbeat.
func decodeMeta(p []byte) (map[string]string, error) {
	if len(p) < 2 {
		return nil, fmt.Errorf("%w: truncated metadata count", ErrBadFrame)
	}
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if n*4 > len(p) {
		return nil, fmt.Errorf("%w: %d metadata entries cannot fit in %d bytes", ErrBadFrame, n, len(p))
	}
	var meta map[string]string
	if n > 0 {
		meta = make(map[string]string, n)
	}
	for range n {
		var kv [2]string
		for i := range kv {
			if len(p) < 2 || len(p) < 2+int(binary.BigEndian.Uint16(p)) {
				return nil, fmt.Errorf("%w: truncated metadata", ErrBadFrame)
			}
			l := int(binary.BigEndian.Uint16(p))
			kv[i] = string(p[2 : 2+l])
			p = p[2+l:]
		}
		meta[kv[0]] = kv[1]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(p))
	}
	return meta, nil
}

func uidPrefixLen(uid string) int { return 1 + len(uid) }

// beatView is a decoded heartbeat whose UID aliases the payload, so that
// a steady-state heartbeat is read without allocating.
type beatView struct {
	uid     []byte
	sent    int64
	echo    int64
	start   int64
	inc     uint64
	flags   byte
	version uint64
	prio    int64
	keys    []string                   // with beatKeys only; allocated only then
	claims  map[string]core.Claim      // with beatKeys only
	known   map[string]uint64          // with beatKeys only
	votes   map[string]core.Vote       // with beatKeys only
	meta    map[string]string          // with beatKeys only
	table   map[string]core.TableEntry // with beatTable only
	base    uint64                     // with beatDelta: claims, known and table hold the changes since this version
}

// msg returns the heartbeat as the core takes it; uid is v.uid as a
// string (the caller keeps one, so that a steady heartbeat allocates
// nothing).
func (v *beatView) msg(uid string) core.Msg {
	return core.Msg{
		UID: uid, Start: v.start, Inc: v.inc, Prio: v.prio, Sent: v.sent, Echo: v.echo,
		Version: v.version, Leaving: v.flags&beatLeaving != 0, Full: v.flags&beatKeys != 0,
		Reply: v.flags&beatReply != 0, Observer: v.flags&beatObserver != 0, Linked: v.flags&beatLinked != 0,
		Redial: v.flags&beatRedial != 0,
		Keys:   v.keys, Claims: v.claims, Known: v.known, Votes: v.votes, Meta: v.meta, Table: v.table, Base: v.base,
	}
}

// decodeBeat decodes a payload; uid, if not nil, is the sender UID from
// the header, and the payload then starts without it.
func decodeBeat(p []byte, uid []byte) (beatView, error) { return decodeBeatIn(p, uid, nil) }

// decodeBeatIn is decodeBeat taking the keys of a full form from in, if
// not nil, where they were seen before: a connection's full forms repeat
// the same keys, which then cost no allocation.
func decodeBeatIn(p []byte, uid []byte, in *keyIntern) (beatView, error) {
	var v beatView
	if uid == nil {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return v, fmt.Errorf("%w: truncated UID", ErrBadFrame)
		}
		uid, p = p[1:1+int(p[0])], p[1+int(p[0]):]
	}
	if len(uid) == 0 {
		return v, fmt.Errorf("%w: empty UID", ErrBadFrame)
	}
	v.uid = uid
	if len(p) < fixedBeat {
		return v, fmt.Errorf("%w: truncated heartbeat", ErrBadFrame)
	}
	v.sent = int64(binary.BigEndian.Uint64(p))
	v.echo = int64(binary.BigEndian.Uint64(p[8:]))
	v.start = int64(binary.BigEndian.Uint64(p[16:]))
	v.inc = binary.BigEndian.Uint64(p[24:])
	v.flags = p[32]
	v.version = binary.BigEndian.Uint64(p[33:])
	v.prio = int64(binary.BigEndian.Uint64(p[41:]))
	p = p[fixedBeat:]
	if v.flags&beatKeys == 0 {
		if len(p) != 0 {
			return v, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(p))
		}
		return v, nil
	}
	var keys []string
	var err error
	if v.flags&beatDelta != 0 {
		// A delta: the keys are those of the state it applies to, the
		// connection's last whole one.
		if in == nil || in.raw == nil {
			return v, fmt.Errorf("%w: a delta on a connection that carried no whole state", ErrBadFrame)
		}
		if len(p) < 8 || binary.BigEndian.Uint64(p) == 0 {
			return v, fmt.Errorf("%w: delta without a base version", ErrBadFrame)
		}
		keys, v.base, p = in.list, binary.BigEndian.Uint64(p), p[8:]
	} else if keys, p, err = readKeys(p, in); err != nil {
		return v, err
	}
	v.keys = keys
	if v.claims, v.known, p, err = decodeClaims(p, keys, v.base != 0); err != nil {
		return v, err
	}
	if v.votes, p, err = decodeVotes(p); err != nil {
		return v, err
	}
	if v.flags&beatTable != 0 {
		var base uint64
		if v.table, base, p, err = decodeTable(p, in, v.flags&beatDelta != 0); err != nil {
			return v, err
		}
		if base != v.base {
			return v, fmt.Errorf("%w: table base %d in a delta of base %d", ErrBadFrame, base, v.base)
		}
	}
	if v.meta, err = decodeMeta(p); err != nil {
		return v, err
	}
	return v, nil
}

// decodeClaims decodes the claims and known terms that follow the key
// list: a count, then (key position uint32, term uint64, state uint8). In
// a delta, state 3 (term 0) says the key has neither any more: the zero
// Claim and a 0 term (core.Msg.Base). It returns what follows them.
func decodeClaims(p []byte, keys []string, delta bool) (map[string]core.Claim, map[string]uint64, []byte, error) {
	if len(p) < 4 {
		return nil, nil, nil, fmt.Errorf("%w: truncated claim count", ErrBadFrame)
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(n)*13 > uint64(len(p)) {
		return nil, nil, nil, fmt.Errorf("%w: %d claims in %d bytes", ErrBadFrame, n, len(p))
	}
	if uint64(n) > uint64(len(keys))+1 {
		// One entry per key at most, and the global one: what the maps
		// are sized for below is bounded by the key list.
		return nil, nil, nil, fmt.Errorf("%w: %d claims for %d keys", ErrBadFrame, n, len(keys))
	}
	// Sized before they are filled: a whole state of a thousand keys
	// would otherwise grow (rehash) each map several times.
	nc, nk := 0, 0
	for j := range int(n) {
		switch p[13*j+12] { // the state
		case 2:
			nk++
		case 3:
			nc, nk = nc+1, nk+1
		default:
			nc++
		}
	}
	var claims map[string]core.Claim
	if nc > 0 {
		claims = make(map[string]core.Claim, nc)
	}
	var known map[string]uint64
	if nk > 0 {
		known = make(map[string]uint64, nk)
	}
	next := int64(-1) // the lowest key position the next entry may have
	for j := range n {
		i := binary.BigEndian.Uint32(p)
		term, state := binary.BigEndian.Uint64(p[4:]), p[12]
		p = p[13:]
		if i == globalClaim && j > 0 || i != globalClaim && int64(i) < next {
			// The global one first, then by position: one entry per key.
			return nil, nil, nil, fmt.Errorf("%w: claim of position %d out of order", ErrBadFrame, i)
		}
		if i != globalClaim {
			next = int64(i) + 1
		}
		k := ""
		if i != globalClaim {
			if int64(i) >= int64(len(keys)) {
				return nil, nil, nil, fmt.Errorf("%w: claim of key %d of %d", ErrBadFrame, i, len(keys))
			}
			k = keys[i]
		}
		if delta && state == 3 && term == 0 {
			claims[k], known[k] = core.Claim{}, 0
			continue
		}
		if term == 0 || state > 2 {
			return nil, nil, nil, fmt.Errorf("%w: claim of term %d, state %d", ErrBadFrame, term, state)
		}
		if state == 2 {
			known[k] = term
			continue
		}
		claims[k] = core.Claim{Term: term, Acting: state == 1}
	}
	return claims, known, p, nil
}

// decodeVotes decodes the votes that follow the claims: a count, then
// (key length uint16, key, UID length uint8, UID, incarnation uint64,
// term uint64). It returns what follows them.
func decodeVotes(p []byte) (map[string]core.Vote, []byte, error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: truncated vote count", ErrBadFrame)
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(n)*(2+1+1+16) > uint64(len(p)) {
		return nil, nil, fmt.Errorf("%w: %d votes cannot fit in %d bytes", ErrBadFrame, n, len(p))
	}
	votes := make(map[string]core.Vote, n)
	for range n {
		if len(p) < 2 || len(p) < 2+int(binary.BigEndian.Uint16(p))+1 {
			return nil, nil, fmt.Errorf("%w: truncated vote", ErrBadFrame)
		}
		kl := int(binary.BigEndian.Uint16(p))
		k := string(p[2 : 2+kl])
		p = p[2+kl:]
		ul := int(p[0])
		if ul == 0 || len(p) < 1+ul+16 {
			return nil, nil, fmt.Errorf("%w: truncated vote", ErrBadFrame)
		}
		v := core.Vote{UID: string(p[1 : 1+ul]), Inc: binary.BigEndian.Uint64(p[1+ul:]), Term: binary.BigEndian.Uint64(p[9+ul:])}
		p = p[17+ul:]
		if v.Term == 0 {
			return nil, nil, fmt.Errorf("%w: vote without a term", ErrBadFrame)
		}
		votes[k] = v
	}
	return votes, p, nil
}

// decodeKeys decodes a key list: a count, then length-prefixed keys.
func decodeKeys(p []byte) ([]string, error) {
	keys, rest, err := readKeys(p, nil)
	if err == nil && len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(rest))
	}
	return keys, err
}

// keyIntern holds the keys a connection's frames named, each as one
// string: a full form that repeats them allocates none. It is dropped
// whole when it grows past maxIntern (a peer that changes its keys all
// the time). It keeps, besides, the key list a frame last named, as on
// the wire (raw) and decoded (list): a full form that repeats the list,
// as most do, is not decoded again, and its list is the same slice
// (read-only, as every decoded frame).
type keyIntern struct {
	// own is this node's keys: one of them is returned as the node's
	// own string, so that the core's maps, keyed by those, compare a
	// pointer rather than the bytes (a thousand keys per whole state).
	own  *core.KeyIndex
	m    map[string]string
	raw  []byte
	list []string
	// lists, if not nil, is the node's key lists that its connections
	// decoded, shared by all of them (keyLists).
	lists *keyLists
}

// keyLists is a node's key lists as its connections decoded them, by
// their bytes on the wire: the replicas of a service hold the same keys,
// and a voter of a thousand members decoded the same list of a thousand
// keys once per connection, a string for each key each time (0.76 of a
// voter's 6.65 CPU-seconds in the first 10 s of BenchmarkMembers
// 1000x1000). A list is read-only once decoded. Safe for concurrent
// use.
type keyLists struct {
	mu sync.RWMutex
	m  map[string][]string
}

// maxKeyLists bounds a node's keyLists: past it, the lists start over.
const maxKeyLists = 64

func (kl *keyLists) get(raw []byte) ([]string, bool) {
	kl.mu.RLock()
	defer kl.mu.RUnlock()
	l, ok := kl.m[string(raw)] // no allocation for the lookup
	return l, ok
}

func (kl *keyLists) put(raw []byte, l []string) {
	kl.mu.Lock()
	defer kl.mu.Unlock()
	if kl.m == nil || len(kl.m) >= maxKeyLists {
		kl.m = make(map[string][]string)
	}
	kl.m[string(raw)] = l
}

// keyListLen returns the length in bytes of the key list p starts with
// (readKeys' format), without decoding it; false if p is too short.
func keyListLen(p []byte) (int, bool) {
	if len(p) < 4 {
		return 0, false
	}
	n, at := binary.BigEndian.Uint32(p), 4
	if uint64(n)*2 > uint64(len(p)-4) {
		return 0, false
	}
	for range n {
		if len(p)-at < 2 {
			return 0, false
		}
		at += 2 + int(binary.BigEndian.Uint16(p[at:]))
		if at > len(p) {
			return 0, false
		}
	}
	return at, true
}

const maxIntern = 1 << 16

// key returns b as a string, the one seen before if any. A nil *keyIntern
// allocates each.
func (in *keyIntern) key(b []byte) string {
	if in == nil {
		return string(b)
	}
	if in.own != nil {
		if i, ok := in.own.Idx[string(b)]; ok { // no allocation either
			return in.own.List[i]
		}
	}
	return in.uid(b)
}

// uid is key for a string that is not one of this node's keys (a UID):
// own is not looked in.
func (in *keyIntern) uid(b []byte) string {
	if in == nil {
		return string(b)
	}
	if k, ok := in.m[string(b)]; ok { // no allocation for the lookup
		return k
	}
	k := string(b)
	if in.m == nil || len(in.m) >= maxIntern {
		in.m = make(map[string]string)
	}
	in.m[k] = k
	return k
}

// readKeys reads a key list, sorted and without repeats, and returns what
// follows it.
func readKeys(p []byte, in *keyIntern) ([]string, []byte, error) {
	if in != nil && in.raw != nil && len(p) >= len(in.raw) && bytes.Equal(p[:len(in.raw)], in.raw) {
		// The list decoded last: the same bytes, the same keys (a key
		// list is self-delimiting).
		return in.list, p[len(in.raw):], nil
	}
	if in != nil && in.lists != nil {
		// A list another connection of this node decoded: the same
		// bytes, the same keys, checked then.
		if n, ok := keyListLen(p); ok {
			if keys, ok := in.lists.get(p[:n]); ok {
				in.raw, in.list = append(in.raw[:0], p[:n]...), keys
				return keys, p[n:], nil
			}
		}
	}
	keys, rest, err := parseKeys(p, in)
	if err == nil && in != nil {
		in.raw, in.list = append(in.raw[:0], p[:len(p)-len(rest)]...), keys
		if in.lists != nil {
			in.lists.put(in.raw, keys)
		}
	}
	return keys, rest, err
}

// parseKeys is readKeys without the last list.
func parseKeys(p []byte, in *keyIntern) ([]string, []byte, error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: truncated key count", ErrBadFrame)
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(n)*2 > uint64(len(p)) || n > math.MaxInt32 {
		return nil, nil, fmt.Errorf("%w: %d keys cannot fit in %d bytes", ErrBadFrame, n, len(p))
	}
	keys := make([]string, 0, n)
	for range n {
		if len(p) < 2 {
			return nil, nil, fmt.Errorf("%w: truncated key", ErrBadFrame)
		}
		l := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+l || l == 0 {
			return nil, nil, fmt.Errorf("%w: bad key length %d", ErrBadFrame, l)
		}
		k := in.key(p[2 : 2+l])
		if len(keys) > 0 && k <= keys[len(keys)-1] {
			// A node's keys are a set, sent sorted: a claim names a key
			// by its position, which a repeated key would make ambiguous.
			return nil, nil, fmt.Errorf("%w: keys not sorted or repeated at %q", ErrBadFrame, k)
		}
		keys = append(keys, k)
		p = p[2+l:]
	}
	return keys, p, nil
}

// appendHello appends a hello frame.
func appendHello(dst []byte, algID byte, nonce []byte) []byte {
	dst = appendHeader(dst, frameHello, 0, 0, "", helloSize)
	dst = append(dst, algID)
	return append(dst, nonce...)
}
