package msc

import (
	"encoding/binary"
	"time"
)

// What a connection decides on its own, shared by the process's
// connections (conn.go) and the simulator's: which frames go out for a
// heartbeat (writer), how each is stamped, and which frames read are news
// for the elector (beatFilter). The conn adds the sealing and the socket;
// the simulator, a simulated network.

// writer is the state of a connection's sending side.
type writer struct {
	buf         []byte
	scratch     []byte // the payload being sealed
	seq         uint64
	sentVersion uint64 // key-set version last sent; ^0: nothing sent yet
	// heldFrom, if not 0: the peer, a member, holds the state of
	// sentVersion but for table entries that changed since version
	// heldFrom, which the frames sent for it alone left out
	// (outBeat.concerning); heldNext is what it is once the planned
	// frame went out (sent).
	heldFrom, heldNext uint64
	done               bool // the leave or the last frame went out, or a write failed
}

func newWriter() writer { return writer{sentVersion: ^uint64(0)} }

// plan returns the payloads (UID first) of the frames that send hb now,
// in order; none if nothing goes out. The first frame on a connection is
// the short form, which the peer reads with a small limit (firstFrameMax)
// until it has authenticated the connection; then the full form if the
// state's version changed since it last went out, else the short one.
// stale: the caller is not the elector right after the core ran, and the
// node has not sent for longer than freshFor (a paused process): a
// heartbeat that claims a mastership is held back, since the claim may be
// stale; the elector sends once it has run. member, if not "": the peer
// is that member, and the frame goes for it alone (a voter's to the
// members its table's change names, and its answers): of a new table,
// only the entries that name it (outBeat.concerning). Otherwise a
// connection that left entries out gets them now, even in a frame of the
// version it has.
func (w *writer) plan(hb *outBeat, stale bool, member string) (first, payload []byte) {
	if w.done || hb == nil || stale && hb.claims {
		return nil, nil
	}
	payload, w.heldNext = hb.short, w.heldFrom
	switch {
	case w.sentVersion == ^uint64(0):
		first, payload, w.heldNext = hb.short, hb.fullForm(), 0
	case member != "":
		if hb.version == w.sentVersion {
			break // nothing new: the short form (what it left out waits for a kick)
		}
		if p, held := hb.concerning(w.sentVersion, member); p != nil {
			if payload = p; held && w.heldFrom == 0 {
				w.heldNext = w.sentVersion
			}
			break
		}
		payload = w.complete(hb)
	case w.heldFrom != 0 || hb.version != w.sentVersion:
		payload = w.complete(hb)
	}
	return first, payload
}

// complete returns the payload that brings the connection to hb whole:
// the delta from the version it sent last, or from the one it left
// entries out since (heldFrom), or the full form.
func (w *writer) complete(hb *outBeat) []byte {
	w.heldNext = 0
	if w.heldFrom != 0 {
		if p := hb.completeFor(w.sentVersion, w.heldFrom); p != nil {
			return p
		}
		return hb.fullForm()
	}
	if d := hb.deltaFrom(w.sentVersion); d != nil {
		return d // what changed since the state it sent last
	}
	return hb.fullForm()
}

// sent records that hb went out. It reports whether that was the leave:
// the writer is done, and the caller half-closes the connection.
func (w *writer) sent(hb *outBeat) bool {
	w.sentVersion, w.heldFrom = hb.version, w.heldNext
	if hb.leaving {
		w.done = true
	}
	return hb.leaving
}

// stamp copies payload (UID first) of a frame of uid into w.scratch with
// the send time, the echo and the flags set, and returns the copy.
func (w *writer) stamp(uid string, payload []byte, sent, echo int64, flags byte) []byte {
	w.scratch = append(w.scratch[:0], payload...)
	p := w.scratch
	at := uidPrefixLen(uid)
	binary.BigEndian.PutUint64(p[at+offSent:], uint64(sent))
	binary.BigEndian.PutUint64(p[at+offEcho:], uint64(echo))
	p[at+offFlags] |= flags
	return p
}

// beatFilter is the state of a connection's receiving side that decides
// which frames the elector is handed.
type beatFilter struct {
	beats       int
	lastVersion uint64 // of the last frame handed to the elector
	lastFlags   byte
	peerUID     string
	peerInc     uint64
	keys        keyIntern // the keys its frames named (decode)
	// lastSent is the peer's clock at its newest frame; lateAt at the
	// newest that came more than 1.5 Intervals (by the peer's clock)
	// after the one before it: the peer's sends were late (0: never).
	lastSent, lateAt int64
	// named: the peer's last frame had the header flag flagNamedOnly.
	named bool
}

// takeNamed takes in the header flag flagNamedOnly of a frame read: it
// reports whether the flag changed since the frame before, and whether
// the entries this end left out go at once: the peer, a member, reads
// the keys' masters from this voter now (writer.plan completes its copy).
func (f *beatFilter) takeNamed(named bool) (changed, complete bool) {
	if named == f.named {
		return false, false
	}
	f.named = named
	return true, !named
}

// lateness takes in the send time (the peer's clock) of each frame read.
func (f *beatFilter) lateness(v *beatView, interval time.Duration) {
	if f.lastSent != 0 && time.Duration(v.sent-f.lastSent) > interval+interval/2 {
		f.lateAt = v.sent
	}
	f.lastSent = max(f.lastSent, v.sent)
}

// silence is how long the connection may carry nothing before this end
// closes it as silent and redials: silentAfter, before the peer counts
// dead, so that a broken flow is redialed in time. But a peer whose own
// sends came late within its last 10 Intervals is overloaded (or
// starved), not cut off: its silence is waited out until WaitTimeout,
// when the core counts it dead anyway. Redialing it would add a handshake
// and a full state to the load that made it late, and on a loaded machine
// that turned into a storm of redials.
func (f *beatFilter) silence(interval, wait time.Duration) time.Duration {
	if f.lateAt != 0 && time.Duration(f.lastSent-f.lateAt) < 10*interval {
		return wait
	}
	return silentAfter(interval, wait)
}

// decode decodes a heartbeat read on the connection (decodeBeat), the
// keys of a full form taken from those its frames named before.
func (f *beatFilter) decode(p, uid []byte) (beatView, error) {
	return decodeBeatIn(p, uid, &f.keys)
}

// news reports whether frame v goes to the elector. Without Quorum (whose
// leases need each echo), a frame that repeats the last one handed over
// (same version and flags, same process, no state) brings nothing new:
// the read loop only records when it arrived, and the elector reads that
// before its next step. The first frames always go, and a state of the
// version last handed over (a voter's that completes what it held back:
// writer.plan).
func (f *beatFilter) news(v *beatView, quorum bool) bool {
	f.beats++
	if !quorum && f.beats > 2 && v.version == f.lastVersion && v.flags == f.lastFlags && v.flags&beatKeys == 0 &&
		v.inc == f.peerInc && string(v.uid) == f.peerUID {
		return false
	}
	f.lastVersion, f.lastFlags = v.version, v.flags
	f.peerInc = v.inc
	if string(v.uid) != f.peerUID { // no allocation when equal
		f.peerUID = string(v.uid)
	}
	return true
}
