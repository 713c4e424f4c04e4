package core

import "errors"

// The errors the core reports (Out.Errs). Package msc exports the same
// values, so that errors.Is matches either.
var (
	// ErrQuorum is reported when the assumption Quorum rests on is
	// broken: more live voters than 2*Quorum-1, or two live processes
	// with one voter UID.
	ErrQuorum = errors.New("msc: quorum")

	// ErrDuplicateUID means a peer advertises this node's own UID.
	ErrDuplicateUID = errors.New("msc: a peer uses this node's UID")

	// ErrBadFrame means a frame could not be parsed (the codec), or a
	// delta came for a state its connection did not carry (Recv).
	ErrBadFrame = errors.New("msc: malformed frame")

	// errStaleDelta is the Fault of a delta to another state than the
	// connection carried: never on TCP, which keeps a connection's
	// frames in order.
	errStaleDelta = &wrapped{ErrBadFrame, "a delta to a state the connection did not carry"}
)

// Fault is an error the core reports; Peer, if set, is the UID of the
// peer it concerns (the driver reports it as a *msc.PeerError).
type Fault struct {
	Peer string // UID of the peer concerned; "": none
	Err  error  // ErrDuplicateUID, or an error wrapping ErrQuorum or ErrBadFrame
}

// wrapped is err with a message after it, as fmt.Errorf("%w: %s", err,
// msg) makes it (the core does not import fmt).
type wrapped struct {
	err error
	msg string
}

// Error returns the message of err, then ": " and msg.
func (w *wrapped) Error() string { return w.err.Error() + ": " + w.msg }

// Unwrap returns the error it wraps.
func (w *wrapped) Unwrap() error { return w.err }
