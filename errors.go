package msc

import (
	"errors"
	"fmt"

	"github.com/msc-go/msc/internal/core"
)

// Errors returned by [New], [Msc.Start], [Msc.AddServer] and the other
// methods, wrapped with what went wrong. Test for them with [errors.Is].
var (
	// ErrEmptyKey is returned when an algorithm other than "no" is chosen
	// without a key (passphrase).
	ErrEmptyKey = errors.New("msc: empty key: an encryption algorithm needs a Key")

	// ErrUnknownAlgorithm is returned for an Algorithm other than "aes128",
	// "aes192", "aes256" or "no".
	ErrUnknownAlgorithm = errors.New("msc: unknown algorithm")

	// ErrInvalidOption is returned (wrapped, naming the option) for an
	// option out of range, such as a negative Interval, by New, and by the
	// methods that change an option at run time (SetMeta, SetKey,
	// AddServer's ServerConfig).
	ErrInvalidOption = errors.New("msc: invalid option")

	// ErrInvalidKey is returned (wrapped, naming the key) by AddKey,
	// AddKeys, RemoveKey and RemoveKeys for an empty key or one longer
	// than MaxKeyLen; New's error for such a key in Options.Keys wraps it
	// and ErrInvalidOption.
	ErrInvalidKey = errors.New("msc: invalid key")

	// ErrServerExists is returned by AddServer for an id already added.
	ErrServerExists = errors.New("msc: server already exists")

	// ErrUnknownServer is returned by RemoveServer for an id never added.
	ErrUnknownServer = errors.New("msc: unknown server")

	// ErrStopped is returned by every method that changes the node (Start,
	// AddServer, RemoveServer, AddKey, AddKeys, RemoveKey, RemoveKeys,
	// Update, SetPriority, SetMeta, SetKey) once Stop has been called, by
	// RunAsMaster when the node stops, by every call of Stop but the one
	// that stopped the node, and wrapped by Healthy's error.
	ErrStopped = errors.New("msc: stopped")

	// ErrRunTimeout is returned (wrapped) by Stop, RemoveKey and
	// RemoveKeys when a RunAsMaster or RunAsMasterByKey function they
	// wait for had not returned within WaitTimeout. They did their work
	// anyway: the node stopped, the keys were removed, and a peer may
	// take over while that function still runs.
	ErrRunTimeout = errors.New("msc: a RunAsMaster function did not return within WaitTimeout")

	// ErrStarted is returned by Start on a node already started.
	ErrStarted = errors.New("msc: already started")

	// ErrQuorum is returned by New when Quorum is not a majority of
	// Options.Voters, and reported to OnError when the assumption Quorum
	// rests on is broken: more live voters than 2*Quorum-1 (without
	// Voters), or two live processes with one voter UID.
	ErrQuorum = core.ErrQuorum

	// ErrUnknownKey is returned (wrapped) by Update, naming the keys it
	// was given that this node does not hold.
	ErrUnknownKey = errors.New("msc: key not held by this node")
)

// Errors reported through [Msc.OnError], wrapped in a [*PeerError] that
// names the peer.
var (
	// ErrAuth means a frame failed authentication: the peer uses another
	// key, or the frame was tampered with, replayed or reordered.
	ErrAuth = errors.New("msc: frame failed authentication (wrong key, tampered or replayed)")

	// ErrFrameTooLarge means a peer declared a frame longer than
	// MaxFrameSize; the connection is closed before anything is allocated.
	ErrFrameTooLarge = errors.New("msc: frame too large")

	// ErrBadFrame means a frame could not be parsed, or changed a state
	// its connection did not carry.
	ErrBadFrame = core.ErrBadFrame

	// ErrVersion means a peer speaks another wire version.
	ErrVersion = errors.New("msc: unsupported wire version")

	// ErrAlgorithmMismatch means the two ends of a connection were
	// configured with different algorithms, or one with TLS and the other
	// with a passphrase.
	ErrAlgorithmMismatch = errors.New("msc: algorithm mismatch")

	// ErrPeerSilent means nothing valid arrived on a connection for
	// (WaitTimeout+Interval)/2; the connection is closed and dialed
	// again (the peer counts dead only at WaitTimeout).
	ErrPeerSilent = errors.New("msc: peer silent on a connection")

	// ErrUnreachable means a configured server could not be dialed.
	ErrUnreachable = errors.New("msc: server unreachable")

	// ErrDuplicateUID means a peer advertises this node's own UID.
	ErrDuplicateUID = core.ErrDuplicateUID

	// ErrCertificate means a TLS handshake (Options.TLS) failed over a
	// certificate: the peer's did not verify (signed by another CA,
	// expired, not for the address dialed), or the peer refused this
	// node's. It is reported once per peer (server id, or address for an
	// inbound connection) until a handshake with it succeeds.
	ErrCertificate = errors.New("msc: certificate refused")

	// ErrKeySetTooLarge means this node's key set does not fit in one
	// frame; peers keep the last key set they received.
	ErrKeySetTooLarge = errors.New("msc: key set too large for one frame")

	// ErrDiscovery means Options.Discover failed (a DNS name that does
	// not resolve yet) or answered an address that is not host:port. It
	// is reported once per outage, not wrapped in a PeerError; the node
	// keeps retrying.
	ErrDiscovery = errors.New("msc: peer discovery failed")
)

// ErrExpvarExists is returned by [Msc.PublishExpvar] for a name already
// published with package expvar (whose Publish would panic).
var ErrExpvarExists = errors.New("msc: expvar name already published")

// PeerError is an error about one peer, delivered to [Msc.OnError].
type PeerError struct {
	// Peer names the peer: the server id given to AddServer, the peer's
	// UID once known, or its network address.
	Peer string
	// Err is the cause; it wraps one of the sentinel errors above or a
	// network error.
	Err error
}

// Error returns "msc: peer <Peer>: <Err>".
func (e *PeerError) Error() string { return fmt.Sprintf("msc: peer %s: %v", e.Peer, e.Err) }

// Unwrap returns the cause, Err, for errors.Is and errors.As.
func (e *PeerError) Unwrap() error { return e.Err }

// ErrUnhealthy is wrapped by the errors of [Msc.Healthy].
var ErrUnhealthy = errors.New("msc: unhealthy")
