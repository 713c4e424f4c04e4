package msc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// Discovery over the fake DNS server (dns_test.go).

const testDiscoverEvery = 50 * time.Millisecond

// listenSame listens on the same free port on each of the loopback
// addresses ips (127.0.0.x), as pods of a Deployment listen on one port,
// each on its own IP.
func listenSame(t testing.TB, ips ...string) ([]net.Listener, int) {
	t.Helper()
	for range 50 {
		first, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		p := port(first)
		lns := []net.Listener{first}
		for _, ip := range ips[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(p)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == len(ips) {
			return lns, p
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	t.Fatal("no port free on every address")
	return nil, 0
}

// list returns the errors reported so far.
func (l *errLog) list() []error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// discoverNode starts node i listening on ln and discovering its peers
// with disc.
func discoverNode(t testing.TB, i int, ln net.Listener, disc Discover, mod func(o *Options)) (*Msc, *errLog) {
	t.Helper()
	o := testOptions(i)
	o.Listener = ln
	o.Discover = disc
	o.DiscoverEvery = testDiscoverEvery
	if mod != nil {
		mod(&o)
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	log := watchErrors(m)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop() })
	return m, log
}

// livePeers returns the UIDs of the peers m counts live, sorted.
func livePeers(m *Msc) []string {
	var out []string
	for _, p := range m.Status().Peers {
		if p.Live {
			out = append(out, p.UID)
		}
	}
	slices.Sort(out)
	return out
}

func uids(nodes ...*Msc) []string {
	var out []string
	for _, m := range nodes {
		out = append(out, m.UID())
	}
	slices.Sort(out)
	return out
}

// others returns the nodes but m.
func others(m *Msc, nodes []*Msc) []*Msc {
	var out []*Msc
	for _, n := range nodes {
		if n != m {
			out = append(out, n)
		}
	}
	return out
}

func servers(m *Msc) []string { return m.Status().Servers }

func discoverID(ip string, port int) string {
	return discoverPrefix + net.JoinHostPort(ip, fmt.Sprint(port))
}

// Three nodes find each other through SRV records (each has its own
// port), each finds itself in the answer and stops dialing it; a fourth
// joins when its record appears.
func TestDiscoverJoin(t *testing.T) {
	d := newFakeDNS(t)
	const name = "_msc._tcp.peers.msc.test."
	disc := DNSResolver(d.resolver(), name, 0)
	var lns []net.Listener
	var recs []net.SRV
	for i := range 4 {
		ln := listen(t)
		lns = append(lns, ln)
		target := fmt.Sprintf("n%d.msc.test.", i)
		d.setIPs(target, "127.0.0.1")
		recs = append(recs, net.SRV{Target: target, Port: uint16(port(ln))})
	}
	d.setSRV(name, recs[:3]...)
	var nodes []*Msc
	var logs []*errLog
	for i := range 3 {
		m, log := discoverNode(t, i, lns[i], disc, nil)
		nodes, logs = append(nodes, m), append(logs, log)
	}
	c := &testCluster{t: t, nodes: nodes}
	c.waitMaster(nodes[0])
	for _, m := range nodes {
		waitFor(t, m.UID()+" sees the others live", func() bool {
			return slices.Equal(livePeers(m), uids(others(m, nodes)...))
		})
		// Its own address was dialed once, recognised, and is no longer a server.
		waitFor(t, m.UID()+" serves the others only", func() bool {
			want := []string{}
			for j, ln := range lns[:3] {
				if nodes[j] != m {
					want = append(want, discoverID("127.0.0.1", port(ln)))
				}
			}
			slices.Sort(want)
			return slices.Equal(servers(m), want)
		})
	}

	// A new replica: its record appears, it starts, everyone sees it.
	d.setSRV(name, recs...)
	m3, log3 := discoverNode(t, 3, lns[3], disc, nil)
	nodes, logs = append(nodes, m3), append(logs, log3)
	c.nodes = nodes
	for _, m := range nodes {
		waitFor(t, m.UID()+" sees all three others live", func() bool {
			return slices.Equal(livePeers(m), uids(others(m, nodes)...))
		})
	}
	c.waitMaster(nodes[0])
	for i, log := range logs {
		if errs := log.list(); len(errs) > 0 {
			t.Errorf("node%d reported %v", i, errs)
		}
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// A node alone in the answer (A and AAAA records, one of them its own
// address) is master, reports nothing, and stops dialing itself: no churn.
func TestDiscoverSelf(t *testing.T) {
	d := newFakeDNS(t)
	const name = "self.msc.test."
	ln := &countingListener{Listener: listen(t)}
	p := port(ln)
	d.setIPs(name, "127.0.0.1", "::1")
	m, log := discoverNode(t, 0, ln, DNSResolver(d.resolver(), name, p), nil)
	waitFor(t, "master", m.IsMaster)
	// [::1] is not listened on: unreachable, so it stays a server; 127.0.0.1
	// is this node: no longer one.
	self := discoverID("127.0.0.1", p)
	waitFor(t, "own address recognised", func() bool {
		m.disc.mu.Lock()
		defer m.disc.mu.Unlock()
		_, ok := m.disc.self[net.JoinHostPort("127.0.0.1", fmt.Sprint(p))]
		return ok && !slices.Contains(servers(m), self)
	})
	accepted := ln.n.Load()
	q := d.queries.Load()
	waitFor(t, "five more lookups", func() bool { return d.queries.Load() >= q+10 })
	if n := ln.n.Load(); n != accepted {
		t.Errorf("%d connections to itself after it was recognised", n-accepted)
	}
	if !m.IsMaster() {
		t.Error("not master")
	}
	for _, err := range log.list() {
		var pe *PeerError
		if errors.As(err, &pe) && pe.Peer == discoverID("::1", p) && errors.Is(err, ErrUnreachable) {
			continue // the address no one listens on
		}
		t.Errorf("reported %v", err)
	}
}

// A peer rescheduled with a new IP (a pod) is found at the next lookup;
// the old address, gone and unreachable, is dropped. Nodes listen on one
// port on 127.0.0.1, .2, .3 and then .4, and find each other by A records.
func TestDiscoverNewIP(t *testing.T) {
	d := newFakeDNS(t)
	const name = "peers.msc.test."
	lns, p := listenSame(t, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	lns[3].Close() // until the node moves there
	d.setIPs(name, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	disc := DNSResolver(d.resolver(), name, p)
	var nodes []*Msc
	for i := range 3 {
		m, _ := discoverNode(t, i, lns[i], disc, nil)
		nodes = append(nodes, m)
	}
	c := &testCluster{t: t, nodes: nodes}
	c.waitMaster(nodes[0])
	for _, m := range nodes {
		waitFor(t, m.UID()+" sees the others", func() bool {
			return slices.Equal(livePeers(m), uids(others(m, nodes)...))
		})
	}
	oldInc := nodes[2].inc

	// node2 dies and comes back on 127.0.0.4, same UID, new process.
	nodes[2].abort()
	d.setIPs(name, "127.0.0.1", "127.0.0.2", "127.0.0.4")
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.4", fmt.Sprint(p)))
	if err != nil {
		t.Fatal(err)
	}
	nodes[2], _ = discoverNode(t, 2, ln, disc, func(o *Options) { o.StartTime = time.Now() })
	c.nodes = nodes
	for _, m := range nodes[:2] {
		waitFor(t, m.UID()+" follows the move", func() bool {
			st := m.Status()
			live := 0
			for _, ps := range st.Peers {
				if ps.Live {
					live++
				}
			}
			return live == 2 && slices.Contains(st.Servers, discoverID("127.0.0.4", p)) &&
				!slices.Contains(st.Servers, discoverID("127.0.0.3", p))
		})
	}
	if nodes[2].inc == oldInc {
		t.Fatal("same incarnation")
	}
	c.waitMaster(nodes[0])
}

// One short answer does not drop a live peer; once the peer is gone too,
// it is dropped.
func TestDiscoverShortAnswer(t *testing.T) {
	d := newFakeDNS(t)
	const name = "short.msc.test."
	lns, p := listenSame(t, "127.0.0.1", "127.0.0.2")
	d.setIPs(name, "127.0.0.1", "127.0.0.2")
	disc := DNSResolver(d.resolver(), name, p)
	a, _ := discoverNode(t, 0, lns[0], disc, nil)
	b, _ := discoverNode(t, 1, lns[1], disc, nil)
	c := &testCluster{t: t, nodes: []*Msc{a, b}}
	c.waitMaster(a)
	idB := discoverID("127.0.0.2", p)
	waitFor(t, "b among a's servers", func() bool { return slices.Contains(servers(a), idB) })

	d.setIPs(name, "127.0.0.1") // b's record vanishes; b lives on
	q := d.queries.Load()
	waitFor(t, "several short answers", func() bool { return d.queries.Load() >= q+10 })
	if !slices.Contains(servers(a), idB) || !slices.Equal(livePeers(a), []string{b.UID()}) {
		t.Fatalf("a live peer was dropped on a short answer: servers %v, live %v", servers(a), livePeers(a))
	}
	b.abort()
	waitFor(t, "b dropped once gone", func() bool { return !slices.Contains(servers(a), idB) })
	if !a.IsMaster() {
		t.Fatal("a not master")
	}
}

// Lookups that fail at boot are retried, reported once, and the node
// claims nothing until it has had an answer (and heard from the servers in
// it) or WaitTimeout has passed.
func TestDiscoverBootFailure(t *testing.T) {
	d := newFakeDNS(t)
	const name = "boot.msc.test."
	d.fail.Store(true)
	lns, p := listenSame(t, "127.0.0.1", "127.0.0.2")
	d.setIPs(name, "127.0.0.1", "127.0.0.2")
	disc := DNSResolver(d.resolver(), name, p)

	// The older node0 runs, and does not look for anyone.
	o := testOptions(0)
	o.Listener = lns[0]
	old, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Stop() })

	// node1 boots while DNS fails, with a long WaitTimeout.
	var mastered atomic.Bool
	m, log := discoverNode(t, 1, lns[1], disc, func(o *Options) { o.WaitTimeout = 20 * time.Second })
	m.OnChange(func(c Change) {
		if c.IsMaster {
			mastered.Store(true)
		}
	})
	q := d.queries.Load()
	waitFor(t, "lookups retried", func() bool {
		if m.IsMaster() || mastered.Load() {
			t.Fatal("master without an answer")
		}
		if _, ok := m.Master(); ok {
			t.Fatal("names a master without an answer")
		}
		return d.queries.Load() >= q+10
	})
	if err := m.Healthy(); err == nil {
		t.Fatal("healthy without an answer")
	}
	errs := log.list()
	if len(errs) != 1 || !errors.Is(errs[0], ErrDiscovery) {
		t.Fatalf("reported %v; want one ErrDiscovery", errs)
	}
	d.fail.Store(false)
	c := &testCluster{t: t, nodes: []*Msc{old, m}}
	c.waitMaster(old)
	if mastered.Load() {
		t.Fatal("node1 was master at some point")
	}
	if err := m.Healthy(); err != nil {
		t.Fatal(err)
	}
}

// A node whose lookups keep failing claims mastership once WaitTimeout
// has passed, not before.
func TestDiscoverBootFailureTimeout(t *testing.T) {
	d := newFakeDNS(t)
	d.fail.Store(true)
	wait := 500 * time.Millisecond
	began := time.Now()
	m, log := discoverNode(t, 0, listen(t), DNSResolver(d.resolver(), "x.msc.test.", 1), func(o *Options) { o.WaitTimeout = wait })
	waitFor(t, "master after WaitTimeout", m.IsMaster)
	if took := time.Since(began); took < wait {
		t.Fatalf("master after %v, before WaitTimeout %v", took, wait)
	}
	if errs := log.list(); len(errs) != 1 || !errors.Is(errs[0], ErrDiscovery) {
		t.Fatalf("reported %v; want one ErrDiscovery", errs)
	}
}

func TestStatic(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{"", nil, false},
		{"10.0.0.1:8778, 10.0.0.2:8778", []string{"10.0.0.1:8778", "10.0.0.2:8778"}, false},
		{"a:1 b:2\tc:3\n,d:4,,", []string{"a:1", "b:2", "c:3", "d:4"}, false},
		{"host", []string{"host:8778"}, false},
		{"[fd00::1]:9, [fd00::2]", []string{"[fd00::1]:9", "[fd00::2]:8778"}, false},
		{"fd00::1", nil, true},
		{"a:0", nil, true},
		{"a:70000", nil, true},
		{"a:x", nil, true},
		{":8778", nil, true},
	} {
		got, err := Static(tc.in)(context.Background())
		if tc.bad != (err != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("Static(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// Two nodes from one static list, each in it.
func TestDiscoverStatic(t *testing.T) {
	a, b := listen(t), listen(t)
	list := Static(a.Addr().String() + "," + b.Addr().String())
	ma, la := discoverNode(t, 0, a, list, nil)
	mb, lb := discoverNode(t, 1, b, list, nil)
	c := &testCluster{t: t, nodes: []*Msc{ma, mb}}
	c.waitMaster(ma)
	waitFor(t, "each dials only the other", func() bool {
		return slices.Equal(servers(ma), []string{discoverPrefix + b.Addr().String()}) &&
			slices.Equal(servers(mb), []string{discoverPrefix + a.Addr().String()})
	})
	if errs := append(la.list(), lb.list()...); len(errs) > 0 {
		t.Fatal(errs)
	}
}

func TestDNSSRVNoTargets(t *testing.T) {
	d := newFakeDNS(t)
	d.setSRV("_x._tcp.msc.test.", net.SRV{Target: "gone.msc.test.", Port: 5})
	if got, err := DNSResolver(d.resolver(), "_x._tcp.msc.test.", 0)(context.Background()); err == nil {
		t.Fatalf("no target resolves: %v, no error", got)
	}
	d.setIPs("gone.msc.test.", "127.0.0.9", "::1")
	got, err := DNSResolver(d.resolver(), "_x._tcp.msc.test.", 0)(context.Background())
	if err != nil || !slices.Equal(got, []string{"127.0.0.9:5", "[::1]:5"}) && !slices.Equal(got, []string{"[::1]:5", "127.0.0.9:5"}) {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestDiscoverEveryOption(t *testing.T) {
	if _, err := New(Options{Algorithm: "no", DiscoverEvery: -1}); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("negative DiscoverEvery: %v", err)
	}
	m, err := New(Options{Algorithm: "no"})
	if err != nil {
		t.Fatal(err)
	}
	if m.cfg.DiscoverEvery != DefaultDiscoverEvery {
		t.Fatalf("default %v", m.cfg.DiscoverEvery)
	}
}

// BenchmarkDiscoverJoin measures the time from a new node's DNS record
// appearing to the node being live on every other node, with
// DiscoverEvery 1s, in two cases: the new node looks the name up itself
// and dials the others at Start (as every replica of a Deployment does);
// and it dials no one, so the others must find it at their next lookup
// (the bound DiscoverEvery sets).
//
//	go test -run '^$' -bench DiscoverJoin -benchtime 10x
func BenchmarkDiscoverJoin(b *testing.B) {
	for _, tc := range []struct {
		name  string
		dials bool
	}{{"new-node-dials", true}, {"found-by-others", false}} {
		b.Run(tc.name, func(b *testing.B) {
			var total, worst time.Duration
			for range b.N {
				took := discoverJoinOnce(b, tc.dials)
				total += took
				worst = max(worst, took)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/join")
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
		})
	}
}

func discoverJoinOnce(b *testing.B, dials bool) time.Duration {
	b.StopTimer()
	defer b.StartTimer()
	d := newFakeDNS(b)
	const name = "bench.msc.test."
	lns, p := listenSame(b, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	d.setIPs(name, "127.0.0.1", "127.0.0.2", "127.0.0.3")
	disc := DNSResolver(d.resolver(), name, p)
	slow := func(o *Options) { o.DiscoverEvery = time.Second }
	var nodes []*Msc
	for i := range 3 {
		m, _ := discoverNode(b, i, lns[i], disc, slow)
		nodes = append(nodes, m)
	}
	c := &testCluster{t: b, nodes: nodes}
	c.waitMaster(nodes[0])
	newDisc := disc
	if !dials {
		newDisc = Static("")
	}
	// The record appears at a random moment of the others' lookup cycle.
	time.Sleep(rand.N(time.Second))
	began := time.Now()
	d.setIPs(name, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
	m3, _ := discoverNode(b, 3, lns[3], newDisc, slow)
	waitFor(b, "the new node live everywhere", func() bool {
		for _, m := range nodes {
			if !slices.Contains(livePeers(m), m3.UID()) {
				return false
			}
		}
		return true
	})
	took := time.Since(began)
	for _, m := range append(nodes, m3) {
		m.Stop()
	}
	return took
}
