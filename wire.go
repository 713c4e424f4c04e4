package msc

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// The wire format. Every constant here is pinned by TestWireConstants; the
// format is described in README.md ("The wire").
const (
	// wireVersion is the first byte after the length; a frame of another
	// version closes the connection with ErrVersion.
	wireVersion byte = 1

	// Frame types. ONLY APPEND TO THIS LIST.
	frameHello     byte = 1 // handshake: algorithm id and a random nonce, in clear
	frameHeartbeat byte = 2 // heartbeat: sealed payload

	// Header flags.
	flagUIDInPayload byte = 1 // HeaderEncrypted: the sender UID is sealed in the payload

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
	beatLeaving byte = 1 // the sender is stopping: count it dead now
	beatKeys    byte = 2 // the full key set follows, then the key claims

	// Heartbeat extensions: (type uint8, length uint16, value). A receiver
	// skips types it does not know. ONLY APPEND TO THIS LIST.
	extPriority byte = 1 // int64: Options.Priority, sent when not 0
	extClaim    byte = 2 // uint8 flags (1: claims global mastership), uint64 term
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

// beat is a heartbeat's content.
type beat struct {
	uid        string
	start      int64 // start time, Unix nanoseconds
	inc        uint64
	leaving    bool
	keyVersion uint64
	keys       []string // sorted; sent only with beatKeys
	prio       int64
	claim      bool     // the sender is global master
	term       uint64   // its global term
	keyTerms   []uint64 // per key: the term of the sender's mastership, 0 if not master
	view       []string // the UIDs of the peers the sender counts live
}

// encodeBeat returns the heartbeat payload, UID first. With withKeys the
// full key set is included. The UID prefix is uidPrefixLen(b.uid) bytes
// long; a sender whose header carries the UID sends the payload without it.
func encodeBeat(b *beat, withKeys bool) ([]byte, error) {
	size := 1 + len(b.uid) + 8 + 8 + 1 + 8 + 1 + 11 + 12
	if withKeys {
		size += 4 + 4
		for _, k := range b.keys {
			size += 2 + len(k)
		}
		for _, t := range b.keyTerms {
			if t != 0 {
				size += 12
			}
		}
		size += 2
		for _, u := range b.view {
			size += 1 + len(u)
		}
	}
	if size+headerSize+64 > MaxFrameSize {
		return nil, ErrKeySetTooLarge
	}
	p := make([]byte, 0, size)
	p = append(p, byte(len(b.uid)))
	p = append(p, b.uid...)
	p = binary.BigEndian.AppendUint64(p, uint64(b.start))
	p = binary.BigEndian.AppendUint64(p, b.inc)
	var fl byte
	if b.leaving {
		fl |= beatLeaving
	}
	if withKeys {
		fl |= beatKeys
	}
	p = append(p, fl)
	p = binary.BigEndian.AppendUint64(p, b.keyVersion)
	if b.prio != 0 {
		p = append(p, 2, extPriority, 0, 8)
		p = binary.BigEndian.AppendUint64(p, uint64(b.prio))
	} else {
		p = append(p, 1)
	}
	var cf byte
	if b.claim {
		cf = 1
	}
	p = append(p, extClaim, 0, 9, cf)
	p = binary.BigEndian.AppendUint64(p, b.term)
	if withKeys {
		p = binary.BigEndian.AppendUint32(p, uint32(len(b.keys)))
		for _, k := range b.keys {
			p = binary.BigEndian.AppendUint16(p, uint16(len(k)))
			p = append(p, k...)
		}
		n := 0
		for _, t := range b.keyTerms {
			if t != 0 {
				n++
			}
		}
		p = binary.BigEndian.AppendUint32(p, uint32(n))
		for i, t := range b.keyTerms {
			if t != 0 {
				p = binary.BigEndian.AppendUint32(p, uint32(i))
				p = binary.BigEndian.AppendUint64(p, t)
			}
		}
		p = binary.BigEndian.AppendUint16(p, uint16(len(b.view)))
		for _, u := range b.view {
			p = append(p, byte(len(u)))
			p = append(p, u...)
		}
	}
	return p, nil
}

func uidPrefixLen(uid string) int { return 1 + len(uid) }

// beatView is a decoded heartbeat whose slices alias the payload, so that
// a steady-state heartbeat is read without allocating.
type beatView struct {
	uid        []byte
	start      int64
	inc        uint64
	flags      byte
	keyVersion uint64
	prio       int64
	claim      bool
	term       uint64
	keys       []string // with beatKeys only; allocated only then
	keyTerms   []uint64 // with beatKeys only, parallel to keys
	view       []string // with beatKeys only
}

// decodeBeat decodes a payload; uid, if not nil, is the sender UID from
// the header, and the payload then starts without it.
func decodeBeat(p []byte, uid []byte) (beatView, error) {
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
	if len(p) < 8+8+1+8+1 {
		return v, fmt.Errorf("%w: truncated heartbeat", ErrBadFrame)
	}
	v.start = int64(binary.BigEndian.Uint64(p))
	v.inc = binary.BigEndian.Uint64(p[8:])
	v.flags = p[16]
	v.keyVersion = binary.BigEndian.Uint64(p[17:])
	ext := int(p[25])
	p = p[26:]
	for range ext {
		if len(p) < 3 {
			return v, fmt.Errorf("%w: truncated extension", ErrBadFrame)
		}
		typ, l := p[0], int(binary.BigEndian.Uint16(p[1:]))
		if len(p) < 3+l {
			return v, fmt.Errorf("%w: truncated extension", ErrBadFrame)
		}
		val := p[3 : 3+l]
		switch {
		case typ == extPriority && l == 8:
			v.prio = int64(binary.BigEndian.Uint64(val))
		case typ == extClaim && l == 9:
			v.claim = val[0]&1 != 0
			v.term = binary.BigEndian.Uint64(val[1:])
		case typ == extPriority || typ == extClaim:
			return v, fmt.Errorf("%w: extension %d of %d bytes", ErrBadFrame, typ, l)
		}
		// Other types: from a later version; skipped.
		p = p[3+l:]
	}
	if v.flags&beatKeys != 0 {
		keys, rest, err := readKeys(p)
		if err != nil {
			return v, err
		}
		v.keys = keys
		if v.keyTerms, rest, err = decodeKeyTerms(rest, len(keys)); err != nil {
			return v, err
		}
		if v.view, err = decodeView(rest); err != nil {
			return v, err
		}
	} else if len(p) != 0 {
		return v, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(p))
	}
	return v, nil
}

// decodeKeys decodes a key list: a count, then length-prefixed keys.
func decodeKeys(p []byte) ([]string, error) {
	keys, rest, err := readKeys(p)
	if err == nil && len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(rest))
	}
	return keys, err
}

// decodeKeyTerms decodes the key claims that follow the key list: a
// count, then (key position uint32, term uint64) pairs. It returns what
// follows them.
func decodeKeyTerms(p []byte, nkeys int) ([]uint64, []byte, error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: truncated claim count", ErrBadFrame)
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(n)*12 > uint64(len(p)) {
		return nil, nil, fmt.Errorf("%w: %d claims in %d bytes", ErrBadFrame, n, len(p))
	}
	terms := make([]uint64, nkeys)
	for range n {
		i := binary.BigEndian.Uint32(p)
		if int64(i) >= int64(nkeys) {
			return nil, nil, fmt.Errorf("%w: claim of key %d of %d", ErrBadFrame, i, nkeys)
		}
		terms[i] = binary.BigEndian.Uint64(p[4:])
		p = p[12:]
	}
	return terms, p, nil
}

// decodeView decodes the view that ends a full heartbeat: a count
// (uint16), then length-prefixed (uint8) UIDs.
func decodeView(p []byte) ([]string, error) {
	if len(p) < 2 {
		return nil, fmt.Errorf("%w: truncated view", ErrBadFrame)
	}
	n := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if n > len(p)/2 {
		return nil, fmt.Errorf("%w: %d UIDs cannot fit in %d bytes", ErrBadFrame, n, len(p))
	}
	view := make([]string, 0, n)
	for range n {
		if len(p) < 1 || len(p) < 1+int(p[0]) || p[0] == 0 {
			return nil, fmt.Errorf("%w: truncated view", ErrBadFrame)
		}
		view = append(view, string(p[1:1+int(p[0])]))
		p = p[1+int(p[0]):]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadFrame, len(p))
	}
	return view, nil
}

// readKeys reads a key list and returns what follows it.
func readKeys(p []byte) ([]string, []byte, error) {
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
		keys = append(keys, string(p[2:2+l]))
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
