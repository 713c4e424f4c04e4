package msc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made in memory for a test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var serial atomic.Int64

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"msc test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for 127.0.0.1 named cn, for both ends of a
// connection (server and client authentication).
func (ca *testCA) issue(t testing.TB, cn string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"msc test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// config returns a node's TLS config: its certificate, this CA trusted.
func (ca *testCA) config(cert *tls.Certificate) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{*cert}, RootCAs: ca.pool}
}

// subject is how Status shows the certificate named cn.
func subject(cn string) string { return "CN=" + cn + ",O=msc test" }

// tlsOptions returns node i's options with TLS and no passphrase.
func tlsOptions(i int, conf *tls.Config) Options {
	o := testOptions(i)
	o.Key, o.TLS = "", conf
	return o
}

// TestTLSCluster: 3 nodes on mutual TLS elect the oldest; every pair is up
// over every connection, and each node shows each peer's certificate
// subject. Nothing is reported. WaitTimeout is 1 s, not the tests' 300
// ms: under -race, beside the other packages' tests, a handshake or a
// write on loopback once took longer, and was reported as an i/o timeout.
func TestTLSCluster(t *testing.T) {
	const wait = time.Second
	ca := newTestCA(t, "cluster CA")
	c := newCluster(t, 3, func(i int, o *Options) {
		*o = tlsOptions(i, ca.config(ca.issue(t, fmt.Sprint("node", i))))
		o.Interval, o.WaitTimeout = 50*time.Millisecond, wait
		o.Listener = listen(t)
	})
	var errs []*errLog
	for _, m := range c.nodes {
		errs = append(errs, watchErrors(m))
	}
	c.start()
	c.waitMaster(c.nodes[0])
	waitFor(t, "every pair up over every connection", func() bool {
		for _, m := range c.nodes {
			for _, p := range c.nodes {
				if m != p && !pairUp(m, p.UID()) {
					return false
				}
			}
		}
		return true
	})
	for _, m := range c.nodes {
		for _, p := range m.Status().Peers {
			if p.CertSubject != subject(p.UID) {
				t.Errorf("%s shows %s's certificate subject as %q, want %q", m.UID(), p.UID, p.CertSubject, subject(p.UID))
			}
		}
	}
	for i, e := range errs {
		flushCallbacks(t, c.nodes[i])
		if s := e.String(); s != "" {
			t.Errorf("node%d reported:%s", i, s)
		}
	}
	// A graceful stop hands over (how fast is logged: with TLS a leaving
	// node closes its sockets rather than half-closing them).
	start := time.Now()
	c.nodes[0].Stop()
	c.waitMaster(c.nodes[1])
	t.Logf("graceful handoff over TLS in %v (WaitTimeout %v)", time.Since(start), wait)
	// A passphrase node's Status has no certificate subjects.
	p := newCluster(t, 2, nil).start()
	p.waitMaster(p.nodes[0])
	if ps := p.nodes[0].Status().Peers; len(ps) != 1 || ps[0].CertSubject != "" {
		t.Fatalf("passphrase node's peers: %+v", ps)
	}
}

// TestTLSOtherCARefused: a node whose certificate comes from another CA
// (it trusts both) dials node 0 and is dialed by it, again and again. Node
// 0 refuses its certificate on both connections, with ErrCertificate
// naming the certificate, and reports that once per connection direction
// however often the node redials; the node reports, once each way, that
// it was refused. Nodes 0 and 1 keep their master.
func TestTLSOtherCARefused(t *testing.T) {
	ca, other := newTestCA(t, "cluster CA"), newTestCA(t, "another CA")
	c := newCluster(t, 2, func(i int, o *Options) {
		*o = tlsOptions(i, ca.config(ca.issue(t, fmt.Sprint("node", i))))
		o.Listener = listen(t)
	})
	ln0 := &countingListener{Listener: c.lns[0]}
	c.opts[0].Listener = ln0
	c.nodes[0] = c.build(0)
	e0 := watchErrors(c.nodes[0])
	c.start()
	c.waitMaster(c.nodes[0])

	both := x509.NewCertPool()
	both.AddCert(ca.cert)
	both.AddCert(other.cert)
	conf := &tls.Config{Certificates: []tls.Certificate{*other.issue(t, "intruder")}, RootCAs: both}
	o := tlsOptions(9, conf)
	o.UID, o.Listener = "intruder", listen(t)
	bad, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	eb := watchErrors(bad)
	bad.AddServer("0", ServerConfig{Port: port(c.lns[0])})
	if err := c.nodes[0].AddServer("intruder", ServerConfig{Port: port(o.Listener)}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := bad.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bad.Stop() })
	waitFor(t, "refusals reported both ways, at both ends", func() bool {
		return len(e0.peerErrors(ErrCertificate)) >= 2 && len(eb.peerErrors(ErrCertificate)) >= 2
	})
	// Watch the redials for longer than OnError's rate-limit window: only
	// the first refusal of each is reported.
	dials := ln0.n.Load()
	waitFor(t, "redials over 2.5 s", func() bool {
		return ln0.n.Load() >= dials+4 && time.Since(t0) > 2*errRateWindow+errRateWindow/2
	})
	flushCallbacks(t, c.nodes[0])
	flushCallbacks(t, bad)
	t.Logf("%d connections accepted by node0 in %v", ln0.n.Load(), time.Since(t0).Round(time.Millisecond))
	r0, rb := e0.peerErrors(ErrCertificate), eb.peerErrors(ErrCertificate)
	if len(r0) != 2 || len(rb) != 2 {
		t.Fatalf("ErrCertificate reported %d times by node0, %d by the intruder; want 2 each (one per direction):\nnode0:%v\nintruder:%v", len(r0), len(rb), e0, eb)
	}
	dialed := 0
	for _, pe := range r0 {
		if pe.Peer == "intruder" {
			dialed++
		}
		var verr *tls.CertificateVerificationError
		if !errors.As(pe, &verr) || len(verr.UnverifiedCertificates) == 0 || verr.UnverifiedCertificates[0].Subject.CommonName != "intruder" {
			t.Errorf("node0's report does not name the intruder's certificate: %v", pe)
		}
		var ua x509.UnknownAuthorityError
		if !errors.As(pe, &ua) {
			t.Errorf("node0's report is not about an unknown authority: %v", pe)
		}
	}
	if dialed != 1 {
		t.Errorf("node0 reported %d refusals about its server \"intruder\", want 1:%v", dialed, e0)
	}
	for _, m := range []*Msc{c.nodes[0], bad} {
		for _, p := range m.Status().Peers {
			if p.UID == "intruder" || m == bad {
				if p.Live {
					t.Errorf("%s counts %s live", m.UID(), p.UID)
				}
			}
		}
	}
	if !c.agreed(c.nodes[0]) {
		t.Fatalf("the cluster disagrees:\n%s", c.describe())
	}
}

// rotatingCert is a certificate a GetCertificate callback returns, which a
// test swaps.
type rotatingCert struct {
	p atomic.Pointer[tls.Certificate]
}

func (r *rotatingCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.p.Load(), nil }

// TestTLSCertificateRotation: both nodes serve their certificate from a
// callback. Each swaps in a new certificate; once they redial, each shows
// the other's new certificate subject, without a restart.
func TestTLSCertificateRotation(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	certs := []*rotatingCert{{}, {}}
	c := newCluster(t, 2, func(i int, o *Options) {
		certs[i].p.Store(ca.issue(t, fmt.Sprintf("node%d v1", i)))
		*o = tlsOptions(i, &tls.Config{GetCertificate: certs[i].get, ClientCAs: ca.pool})
		o.Listener = listen(t)
	})
	c.start()
	c.waitMaster(c.nodes[0])
	shows := func(m *Msc, uid, cn string) bool {
		for _, p := range m.Status().Peers {
			if p.UID == uid && p.Live && p.CertSubject == subject(cn) {
				return true
			}
		}
		return false
	}
	waitFor(t, "the first certificates shown", func() bool {
		return shows(c.nodes[0], "node1", "node1 v1") && shows(c.nodes[1], "node0", "node0 v1")
	})
	for i := range certs {
		certs[i].p.Store(ca.issue(t, fmt.Sprintf("node%d v2", i)))
	}
	// A connection keeps the certificates of its handshake: redial. The
	// pair keeps one connection, dialed by either node, so both redial.
	for i, n := range c.nodes {
		other := strconv.Itoa(1 - i)
		if err := n.RemoveServer(other); err != nil {
			t.Fatal(err)
		}
		if err := n.AddServer(other, ServerConfig{Port: port(c.lns[1-i])}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the new certificates shown", func() bool {
		return shows(c.nodes[0], "node1", "node1 v2") && shows(c.nodes[1], "node0", "node0 v2")
	})
	if !c.agreed(c.nodes[0]) {
		t.Fatalf("the cluster disagrees:\n%s", c.describe())
	}
}

// TestTLSAgainstPassphrase: a TLS node and a passphrase node dial each
// other; both report ErrAlgorithmMismatch, and neither counts the other.
func TestTLSAgainstPassphrase(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	c := newCluster(t, 2, func(i int, o *Options) {
		if i == 0 {
			*o = tlsOptions(i, ca.config(ca.issue(t, "node0")))
			o.Listener = listen(t)
		}
	})
	e0, e1 := watchErrors(c.nodes[0]), watchErrors(c.nodes[1])
	c.start()
	waitFor(t, "both ends report the mismatch, both ways", func() bool {
		return len(e0.peerErrors(ErrAlgorithmMismatch)) >= 2 && len(e1.peerErrors(ErrAlgorithmMismatch)) >= 2
	})
	for _, m := range c.nodes {
		for _, p := range m.Status().Peers {
			if p.Live {
				t.Fatalf("%s counts %s live", m.UID(), p.UID)
			}
		}
	}
}

// TestTLSOptions: what New, AddServer and SetKey refuse with TLS, and that
// New leaves the caller's config as it was.
func TestTLSOptions(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	cert := ca.issue(t, "node0")
	good := func() *tls.Config { return ca.config(cert) }
	for _, tc := range []struct {
		name string
		mod  func(o *Options)
	}{
		{"Key", func(o *Options) { o.Key = "k" }},
		{"Algorithm", func(o *Options) { o.Algorithm = "no" }},
		{"AcceptKeys", func(o *Options) { o.AcceptKeys = []string{"k"} }},
		{"no certificate", func(o *Options) { o.TLS.Certificates = nil }},
		{"no CA", func(o *Options) { o.TLS.RootCAs = nil }},
		{"InsecureSkipVerify", func(o *Options) { o.TLS.InsecureSkipVerify = true }},
		{"TLS 1.2", func(o *Options) { o.TLS.MaxVersion = tls.VersionTLS12 }},
		{"client certificates optional", func(o *Options) { o.TLS.ClientAuth = tls.VerifyClientCertIfGiven }},
	} {
		o := tlsOptions(0, good())
		tc.mod(&o)
		if m, err := New(o); !errors.Is(err, ErrInvalidOption) || m != nil {
			t.Errorf("%s: New: %v, want ErrInvalidOption", tc.name, err)
		}
	}
	conf := good()
	m, err := New(tlsOptions(0, conf))
	if err != nil {
		t.Fatal(err)
	}
	if conf.MinVersion != 0 || conf.ClientAuth != tls.NoClientCert || conf.ClientCAs != nil || conf.GetClientCertificate != nil {
		t.Fatalf("New changed the caller's tls.Config: %+v", conf)
	}
	if err := m.SetKey("k"); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("SetKey with TLS: %v", err)
	}
	for _, sc := range []ServerConfig{{Port: 1, Key: "k"}, {Port: 1, Algorithm: "aes128"}} {
		if err := m.AddServer("s", sc); !errors.Is(err, ErrInvalidOption) {
			t.Fatalf("AddServer(%+v) with TLS: %v", sc, err)
		}
	}
	if err := m.AddServer("s", ServerConfig{Port: 1}); err != nil {
		t.Fatal(err)
	}
	m.Stop()
}

// handshakeBench runs b.N handshakes between two conns over loopback TCP:
// dial and accept are outside the timer; each handshake is timed end to
// end, both ends running at once.
func handshakeBench(b *testing.B, dm, lm *Msc, dconf *tls.Config) {
	ln := listen(b)
	defer ln.Close()
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		accepted := make(chan net.Conn, 1)
		go func() {
			nc, _ := ln.Accept()
			accepted <- nc
		}()
		dc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		lc := <-accepted
		d := newConn(dm, dc, context.Background(), "peer", dm.cfg.suite)
		d.tlsConf = dconf
		l := newConn(lm, lc, context.Background(), "", lm.cfg.suite)
		var wg sync.WaitGroup
		var lerr error
		b.StartTimer()
		wg.Add(1)
		go func() {
			defer wg.Done()
			lerr = l.handshake()
		}()
		derr := d.handshake()
		wg.Wait()
		b.StopTimer()
		if derr != nil || lerr != nil {
			b.Fatal(derr, lerr)
		}
		dc.Close()
		lc.Close()
	}
}

// BenchmarkHandshake: a connection's handshake with a passphrase (hellos,
// session key) and with mutual TLS (TLS 1.3, ECDSA P-256 certificates,
// then the hellos inside it).
func BenchmarkHandshake(b *testing.B) {
	b.Run("passphrase", func(b *testing.B) {
		s, err := newSuite("aes128", "bench passphrase")
		if err != nil {
			b.Fatal(err)
		}
		m := &Msc{cfg: &config{Options: Options{WaitTimeout: 5 * time.Second}, suite: s}}
		handshakeBench(b, m, m, nil)
	})
	b.Run("tls", func(b *testing.B) {
		ca := newTestCA(b, "bench CA")
		conf := func(cn string) *config {
			c, err := newTLSConfig(ca.config(ca.issue(b, cn)))
			if err != nil {
				b.Fatal(err)
			}
			s, _ := newSuite("no", "")
			return &config{Options: Options{WaitTimeout: 5 * time.Second}, suite: s, tls: c}
		}
		dm, lm := &Msc{cfg: conf("dialer")}, &Msc{cfg: conf("listener")}
		handshakeBench(b, dm, lm, dialTLSConfig(dm.cfg.tls, "127.0.0.1"))
	})
}

// BenchmarkIdleCPU: 5 nodes in one process, full mesh, Interval 100ms,
// with a passphrase and with mutual TLS: the process's CPU per node over a
// steady 10 s window. Run:
//
//	go test -run '^$' -bench IdleCPU -benchtime 1x
func BenchmarkIdleCPU(b *testing.B) {
	const n, window = 5, 10 * time.Second
	ca := newTestCA(b, "bench CA")
	for _, useTLS := range []bool{false, true} {
		name := "passphrase"
		if useTLS {
			name = "tls"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				c := newCluster(b, n, func(i int, o *Options) {
					if useTLS {
						ln := o.Listener
						*o = tlsOptions(i, ca.config(ca.issue(b, fmt.Sprint("node", i))))
						o.Listener = ln
					}
					o.Interval, o.WaitTimeout = DefaultInterval, 3*DefaultInterval
				})
				c.start()
				waitFor(b, "convergence", func() bool {
					if !c.agreed(c.nodes[0]) {
						return false
					}
					for _, m := range c.nodes {
						for _, p := range c.nodes {
							if m != p && !pairUp(m, p.UID()) {
								return false
							}
						}
					}
					return true
				})
				cpu0, start := cpuTime(), time.Now()
				time.Sleep(window) // a measurement window, not a synchronisation
				cpu, elapsed := cpuTime()-cpu0, time.Since(start)
				if !c.agreed(c.nodes[0]) {
					b.Fatalf("mastership moved during the steady window:\n%s", c.describe())
				}
				c.stopAll()
				b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds()/n, "cpu%/node")
			}
		})
	}
}
