package msc

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"time"
)

// Defaults for the zero values of [Options] and [ServerConfig].
const (
	DefaultAlgorithm = "aes128"               // for Options.Algorithm
	DefaultPort      = 8778                   // for Options.Port and ServerConfig.Port
	DefaultInterval  = 100 * time.Millisecond // for Options.Interval
	DefaultHost      = "127.0.0.1"            // for ServerConfig.Host

	DefaultDiscoverEvery = 5 * time.Second // for Options.DiscoverEvery
)

// MaxUIDLen is the longest UID a node may have, in bytes.
const MaxUIDLen = 255

// MaxKeyLen is the longest key a node may compete for, in bytes.
const MaxKeyLen = 1024

// Options configure a node. The zero value of each field selects its
// documented default. [New] copies the struct; it never writes to it.
type Options struct {
	// Key is the shared secret, a passphrase from which the AES key is
	// derived. It must be set unless Algorithm is "no".
	Key string
	// Algorithm is "aes128" (the default), "aes192", "aes256" (AES-GCM
	// with a key of that size) or "no" (no encryption, no authentication).
	Algorithm string
	// HeaderEncrypted also hides the frame header's sender UID; by default
	// the UID travels in clear, authenticated but readable.
	HeaderEncrypted bool
	// Host is the host to listen on; "" (the default) means all interfaces.
	Host string
	// Port is the port to listen on; 0 means 8778. Ignored when Listener
	// is set.
	Port int
	// Listener, if set, is used instead of listening on Host:Port (tests
	// pass a listener on 127.0.0.1:0). Stop closes it.
	Listener net.Listener
	// StartTime orders the nodes: the oldest live node is master. The
	// default is the time New was called.
	StartTime time.Time
	// Interval is the heartbeat period; default 100ms.
	Interval time.Duration
	// WaitTimeout is how long a peer may stay silent before it is counted
	// dead; default 3*Interval. It must be at least 2*Interval.
	WaitTimeout time.Duration
	// UID identifies the node; default: 16 random hex digits. At most
	// MaxUIDLen bytes.
	UID string
	// Logger receives debug and warning logs; default: discard.
	Logger *slog.Logger
	// Keys are the keys this node competes for from the start. For many
	// keys, pass them here (or to AddKeys) rather than one AddKey each.
	Keys []string
	// Balance spreads the keys over the nodes: the master of a key is the
	// live node holding it with the highest rendezvous weight (see
	// README), instead of the oldest. A node joining or leaving moves only
	// the keys it takes or held. The global master is still the oldest.
	// Every node of a cluster must use the same setting.
	Balance bool
	// AcceptKeys are more passphrases accepted, while Key seals what this
	// node sends: rotate a cluster's key without downtime by adding the
	// new key to AcceptKeys everywhere, then switching each node's Key to
	// it (Msc.SetKey, or a restart), then dropping the old. A peer that
	// dials this node with an accepted key is answered in that key; a
	// connection this node dials also opens frames sealed with them.
	AcceptKeys []string
	// Priority comes before StartTime in the election order: a node with
	// a higher priority is master before an older one. Default 0.
	Priority int
	// Sticky keeps mastership where it is: a live master (global or of a
	// key) stays master when a node earlier in the order appears, back
	// from a pause or a partition. Among several masters (a healed
	// partition without Quorum) the first in order keeps it. A higher
	// Priority still takes over (Msc.SetPriority moves mastership). Every
	// node of a cluster must use the same setting.
	Sticky bool
	// Quorum, if above 1, is the number of nodes (this one included)
	// that must acknowledge a claim before it is a mastership, globally
	// or of a key; set n/2+1 of n nodes on every node. Then at most one
	// node is master at any instant under any partition, and no fencing
	// term is used twice. Each node acknowledges one claim per key at a
	// time and keeps to it until the claimant withdraws, leaves or has not
	// been heard for WaitTimeout+M, M = max(Interval, WaitTimeout/4); a
	// master's lease ends WaitTimeout after the send time of its frame
	// that a quorum echoed, at least M before anyone else can be
	// acknowledged (clock rates may differ by up to M/(WaitTimeout+M)).
	// IsMaster checks the lease. The price: a crash is noticed after
	// WaitTimeout+M rather than at once, and a cold cluster has its first
	// master after WaitTimeout+M. See README "Quorum". Default 0: off.
	//
	// Quorum assumes one live process per voter: a fourth process (a
	// surge pod in a rolling update, an old incarnation behind a
	// partition) makes two disjoint majorities possible. Set Voters to
	// name the voters; without it, a node that sees more live voters
	// than 2*Quorum-1 reports an error wrapping ErrQuorum to OnError.
	Quorum int
	// Voters, if set, are the UIDs of the voters (for instance the pod
	// names of a StatefulSet, which stay the same across restarts); every
	// other node is a member. A voter's vote counts toward Quorum once
	// whatever its incarnation; a member does not vote. With Voters,
	// Quorum must be above len(Voters)/2 and at most len(Voters) (New
	// returns an error wrapping ErrQuorum otherwise).
	//
	// Voters also shape the cluster for size (README, "Large clusters"):
	// voters connect to each other and accept members; a member connects
	// to the voters only (give it their addresses: AddServer, or Discover
	// with a name that lists the voters), and closes a connection that
	// leads to another member, as a voter does one it dialed to a member;
	// neither dials that address again. The global master is always a
	// voter. A member holds keys and can be master of them: the voters
	// see every node, decide each key's master among all its live holders
	// by the usual rules, and relay it to the members. A member that hears
	// from no voter is master of nothing (Healthy says so). A cluster
	// costs about 2·V·N frames per Interval instead of N·(N−1).
	//
	// Every node of a cluster must use the same list. Default nil: a full
	// mesh where every node that is not an Observer votes.
	Voters []string
	// Discover, if set, finds the peers: [DNS] (a Kubernetes headless
	// Service), [Static] (a list from an environment variable) or a
	// function of the caller's. It is called at Start, then every
	// DiscoverEvery, and sooner after a failure. Each address it returns
	// is dialed as a server (ids "discover:host:port"), beside those
	// added with AddServer; the node's own address among them is
	// recognised in the handshake and no longer dialed. An address is
	// dropped once it is both absent from an answer and not connected.
	// Until the first answer (or WaitTimeout after Start) the node claims
	// nothing, and then until it has heard from the addresses answered
	// (as from AddServer's servers: Start). Failures are retried and reported to OnError, once per
	// outage, wrapping ErrDiscovery; they are never fatal. Discover must
	// return when its context is done. Default nil: only AddServer.
	Discover Discover
	// DiscoverEvery is how often Discover is called; default 5s. After a
	// failure it is retried sooner: after 100ms (or DiscoverEvery if
	// shorter), doubling up to DiscoverEvery.
	DiscoverEvery time.Duration
	// Observer makes a node that connects, knows the master (globally
	// and per key: Master, MasterByKey, Watch, Status) and never becomes
	// master of anything. It does not count toward Quorum: it does not
	// vote, so that adding or removing observers (dashboards, tools)
	// never changes which majority is needed, and a partition's side made
	// mostly of observers cannot elect a master.
	Observer bool
	// Meta is this node's metadata, for instance the address of its HTTP
	// API: it travels to the peers with the node's state, so that any
	// node can find the master's (Msc.MasterMeta). At most MaxMetaSize
	// bytes encoded. New copies it; Msc.SetMeta changes it at run time.
	Meta map[string]string
	// TLS, if set, secures every connection with TLS 1.3 and certificates
	// verified both ways (mutual TLS), instead of a passphrase: Key,
	// Algorithm and AcceptKeys must then be empty, and so must the Key and
	// Algorithm of every ServerConfig. New copies it and enforces TLS 1.3
	// and RequireAndVerifyClientCert; it must not set InsecureSkipVerify.
	//
	// The node's certificate is GetCertificate's, else Certificates[0], on
	// both ends of a connection (GetClientCertificate's, if set, when it
	// dials); each handshake asks again, so a callback that returns a
	// renewed certificate rotates it without a restart. Peers'
	// certificates are verified against RootCAs and ClientCAs (either
	// defaults to the other; one is required), so they need both the
	// server and the client extended key usage. A dialed server's
	// certificate must also be valid for ServerName, or, if that is empty,
	// for the ServerConfig's Host. A refused certificate is reported to
	// OnError as ErrCertificate, and Status shows each peer's certificate
	// subject.
	TLS *tls.Config
}

// LogValue implements [slog.LogValuer]; the key is never logged.
func (o Options) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("algorithm", o.Algorithm),
		slog.Bool("key_set", o.Key != ""),
		slog.Int("accept_keys", len(o.AcceptKeys)),
		slog.Bool("tls", o.TLS != nil),
		slog.String("uid", o.UID),
		slog.Duration("interval", o.Interval),
		slog.Duration("wait_timeout", o.WaitTimeout),
	)
}

// ServerConfig is a peer for a node to dial, given to [Msc.AddServer].
type ServerConfig struct {
	// Host is the peer's host; default "127.0.0.1".
	Host string
	// Port is the peer's port; required.
	Port int
	// Algorithm for this connection; default: the node's Options.Algorithm.
	Algorithm string
	// Key for this connection; default: the node's Options.Key. The
	// node's own key given here is the node's key: it follows SetKey. Any
	// other key is the server's own, kept through SetKey (see there).
	Key string
}

// LogValue implements [slog.LogValuer]; the key is never logged.
func (c ServerConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", net.JoinHostPort(c.Host, fmt.Sprint(c.Port))),
		slog.String("algorithm", c.Algorithm),
		slog.Bool("key_set", c.Key != ""),
	)
}

// config is the validated copy of Options that a node runs with.
type config struct {
	Options
	suite *suite
	tls   *tls.Config // Options.TLS, checked and copied; nil without TLS
}

func newConfig(o Options) (*config, error) {
	c := &config{Options: o}
	c.Keys = slices.Clone(o.Keys)
	if o.TLS != nil {
		if o.Key != "" || o.Algorithm != "" || len(o.AcceptKeys) > 0 {
			return nil, fmt.Errorf("%w: Key, Algorithm and AcceptKeys must be empty with TLS", ErrInvalidOption)
		}
		var err error
		if c.tls, err = newTLSConfig(o.TLS); err != nil {
			return nil, err
		}
		c.TLS = c.tls      // the node's copy, never the caller's
		c.Algorithm = "no" // TLS seals; inside it, frames travel as with "no"
	}
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	if err := checkAlgorithm(c.Algorithm, c.Key); err != nil {
		return nil, err
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Port < 0 || c.Port > 65535 {
		return nil, fmt.Errorf("%w: Port %d out of range", ErrInvalidOption, c.Port)
	}
	if err := defaultDuration("Interval", &c.Interval, DefaultInterval); err != nil {
		return nil, err
	}
	if err := defaultDuration("WaitTimeout", &c.WaitTimeout, 3*c.Interval); err != nil {
		return nil, err
	}
	if c.WaitTimeout < 2*c.Interval {
		// One heartbeat late would count a live peer dead: mastership
		// would flap on ordinary jitter.
		return nil, fmt.Errorf("%w: WaitTimeout %v shorter than 2*Interval (%v)", ErrInvalidOption, c.WaitTimeout, 2*c.Interval)
	}
	if err := defaultDuration("DiscoverEvery", &c.DiscoverEvery, DefaultDiscoverEvery); err != nil {
		return nil, err
	}
	if c.Quorum < 0 {
		return nil, fmt.Errorf("%w: negative Quorum %d", ErrInvalidOption, c.Quorum)
	}
	c.Voters = slices.Clone(o.Voters)
	if err := checkVoters(c.Voters, c.Quorum); err != nil {
		return nil, err
	}
	if c.UID == "" {
		var b [8]byte
		rand.Read(b[:])
		c.UID = hex.EncodeToString(b[:])
	}
	if len(c.UID) > MaxUIDLen {
		return nil, fmt.Errorf("%w: UID longer than %d bytes", ErrInvalidOption, MaxUIDLen)
	}
	if c.StartTime.IsZero() {
		c.StartTime = time.Now()
	}
	c.StartTime = c.StartTime.Round(0) // drop the monotonic reading: the wire carries wall time
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	for _, k := range c.Keys {
		if err := checkKey(k); err != nil {
			return nil, err
		}
	}
	c.AcceptKeys = slices.Clone(o.AcceptKeys)
	c.Meta = maps.Clone(o.Meta)
	if err := checkMeta(c.Meta); err != nil {
		return nil, err
	}
	s, err := newSuite(c.Algorithm, c.Key)
	if err != nil {
		return nil, err
	}
	if c.suite, err = s.withAccept(c.AcceptKeys); err != nil {
		return nil, err
	}
	return c, nil
}

// defaultDuration refuses a negative duration option and sets a zero one
// to def.
func defaultDuration(name string, d *time.Duration, def time.Duration) error {
	if *d < 0 {
		return fmt.Errorf("%w: negative %s %v", ErrInvalidOption, name, *d)
	}
	if *d == 0 {
		*d = def
	}
	return nil
}

func checkAlgorithm(alg, key string) error {
	if _, ok := keySizes[alg]; !ok {
		return fmt.Errorf("%w: %q (want aes128, aes192, aes256 or no)", ErrUnknownAlgorithm, alg)
	}
	if alg != "no" && key == "" {
		return ErrEmptyKey
	}
	return nil
}

// checkVoters checks Options.Voters against Quorum: no empty or repeated
// UID, and a Quorum that is a majority of the voters.
func checkVoters(voters []string, quorum int) error {
	seen := make(map[string]bool, len(voters))
	for _, v := range voters {
		if v == "" || len(v) > MaxUIDLen {
			return fmt.Errorf("%w: Voters: UID %q empty or longer than %d bytes", ErrInvalidOption, v, MaxUIDLen)
		}
		if seen[v] {
			return fmt.Errorf("%w: Voters: UID %q listed twice", ErrInvalidOption, v)
		}
		seen[v] = true
	}
	if len(voters) > 0 && quorum > 0 && (quorum <= len(voters)/2 || quorum > len(voters)) {
		return fmt.Errorf("%w: Quorum %d of %d Voters: want a majority, %d to %d", ErrQuorum, quorum, len(voters), len(voters)/2+1, len(voters))
	}
	return nil
}

func checkMeta(meta map[string]string) error {
	if n := metaSize(meta); n > MaxMetaSize {
		return fmt.Errorf("%w: Meta of %d bytes encoded, more than %d", ErrInvalidOption, n, MaxMetaSize)
	}
	return nil
}

// checkKey returns an error wrapping ErrInvalidKey and ErrInvalidOption
// for a key a node cannot hold.
func checkKey(k string) error {
	if k == "" {
		return fmt.Errorf("%w: %w: empty key name", ErrInvalidOption, ErrInvalidKey)
	}
	if len(k) > MaxKeyLen {
		return fmt.Errorf("%w: %w: key name %.16q… longer than %d bytes", ErrInvalidOption, ErrInvalidKey, k, MaxKeyLen)
	}
	return nil
}

// fill returns the server config with the node's defaults filled in, and
// validates it.
func (c ServerConfig) fill(node *config) (ServerConfig, error) {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.Port <= 0 || c.Port > 65535 {
		return c, fmt.Errorf("%w: server Port %d out of range", ErrInvalidOption, c.Port)
	}
	if c.Algorithm == "" {
		c.Algorithm = node.Algorithm
	}
	if c.Key == "" {
		c.Key = node.Key
	}
	if err := checkAlgorithm(c.Algorithm, c.Key); err != nil {
		return c, err
	}
	return c, nil
}

func (c ServerConfig) addr() string { return net.JoinHostPort(c.Host, fmt.Sprint(c.Port)) }
