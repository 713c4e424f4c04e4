package msc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Discover finds the peers of a node: it returns their "host:port"
// addresses, this node's own address possibly among them. Set it as
// [Options].Discover; [DNS] and [Static] build the usual ones. It must
// return when ctx is done.
type Discover func(ctx context.Context) ([]string, error)

// DNS discovers the peers by the addresses of name, such as the headless
// Service of a Kubernetes Deployment ("msc.default.svc.cluster.local"):
// its A and AAAA records, each with port. With port 0, it asks instead for
// the SRV records of name ("_msc._tcp.msc.default.svc.cluster.local"),
// which give the hosts and ports, and resolves each host to its addresses.
// It asks net.DefaultResolver; see [DNSResolver] for another. DNS itself
// does not block: the node calls the Discover it returns, every
// Options.DiscoverEvery, and reports its errors to OnError as
// [ErrDiscovery].
func DNS(name string, port int) Discover {
	return DNSResolver(nil, name, port)
}

// DNSResolver is [DNS] asking r (nil: net.DefaultResolver), for example a
// resolver whose Dial goes to a DNS server other than the system's (a
// Consul agent, or a test's).
func DNSResolver(r *net.Resolver, name string, port int) Discover {
	if r == nil {
		r = net.DefaultResolver
	}
	return func(ctx context.Context) ([]string, error) {
		if port < 0 || port > 65535 {
			return nil, fmt.Errorf("DNS %q: port %d out of range", name, port)
		}
		if port > 0 {
			return lookupHost(ctx, r, name, port, nil)
		}
		_, srvs, err := r.LookupSRV(ctx, "", "", name)
		if err != nil {
			return nil, err
		}
		var out []string
		var errs []error
		for _, s := range srvs {
			if s.Port == 0 {
				continue
			}
			out, err = lookupHost(ctx, r, s.Target, int(s.Port), out)
			if err != nil {
				errs = append(errs, err)
			}
		}
		if len(out) == 0 && len(errs) > 0 {
			return nil, errs[0] // no target resolved
		}
		return out, nil
	}
}

// lookupHost appends the addresses of host, each with port, to out. An IP
// address is taken as it is.
func lookupHost(ctx context.Context, r *net.Resolver, host string, port int, out []string) ([]string, error) {
	p := strconv.Itoa(port)
	if ip := net.ParseIP(host); ip != nil {
		return append(out, net.JoinHostPort(ip.String(), p)), nil
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return out, err
	}
	for _, ip := range ips {
		out = append(out, net.JoinHostPort(ip.String(), p))
	}
	return out, nil
}

// Static discovers the peers from a fixed list of addresses separated by
// commas or white space, such as "10.0.0.1:8778, 10.0.0.2:8778" kept in an
// environment variable. A host without a port gets DefaultPort; an IPv6
// address needs brackets ("[fd00::1]:8778"). The list may name this node
// too, so every node can be given the same one. A malformed entry makes
// each call fail with an error naming it (reported to OnError as
// [ErrDiscovery]). Static does not block.
func Static(list string) Discover {
	fields := strings.FieldsFunc(list, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	var addrs []string
	var bad error
	for _, f := range fields {
		a, err := normalizeAddr(f, DefaultPort)
		if err != nil {
			bad = err
			break
		}
		addrs = append(addrs, a)
	}
	return func(context.Context) ([]string, error) {
		if bad != nil {
			return nil, bad
		}
		return append([]string(nil), addrs...), nil
	}
}

// normalizeAddr returns a as host:port, with defPort for a host without
// a port (0: a port is required).
func normalizeAddr(a string, defPort int) (string, error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		if defPort == 0 || strings.Contains(a, ":") && !strings.HasPrefix(a, "[") {
			return "", fmt.Errorf("address %q: want host:port", a)
		}
		host, port = strings.Trim(a, "[]"), strconv.Itoa(defPort)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 || host == "" {
		return "", fmt.Errorf("address %q: want host:port with a port in 1-65535", a)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// discoverWait is the pseudo server the elector waits for at Start until
// Discover has answered once (or WaitTimeout passed): a node does not
// claim mastership before it knows whom to ask.
const discoverWait = "discovery (no answer yet)"

// discoverPrefix starts the server id of each discovered address.
const discoverPrefix = "discover:"

// Retry after a failed Discover: from discoverRetry (or DiscoverEvery if
// shorter), doubling up to DiscoverEvery; each call may take up to
// max(DiscoverEvery, discoverTimeout).
const (
	discoverRetry   = 100 * time.Millisecond
	discoverTimeout = 5 * time.Second
)

// discovery is what a node has found with Options.Discover.
type discovery struct {
	// mu guards the fields below it.
	mu   sync.Mutex
	ids  map[string]string   // address → server id, dialed
	self map[string]struct{} // addresses found to lead to this node
}

// runDiscover calls Options.Discover at Start, then every DiscoverEvery,
// sooner after a failure, and dials what it finds. It is started by Start
// and waited for by Stop (m.wg).
func (m *Msc) runDiscover() {
	defer m.wg.Done()
	every := m.cfg.DiscoverEvery
	first := min(every, discoverRetry)
	backoff := first
	failing, answered := false, false
	for {
		ctx, cancel := context.WithTimeout(m.ctx, max(every, discoverTimeout))
		addrs, err := m.cfg.Discover(ctx)
		cancel()
		if m.ctx.Err() != nil || m.leaving.Load() {
			return
		}
		wait := every
		if err != nil {
			if !failing { // once per outage
				m.report(fmt.Errorf("%w: %w", ErrDiscovery, err))
			}
			failing = true
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, every)
		} else {
			failing, backoff = false, first
			m.found(addrs, !answered)
			answered = true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-m.ctx.Done():
			t.Stop()
			return
		}
	}
}

// found applies one answer of Discover: new addresses are dialed; an
// address absent from it is dropped if it has no connection up (a live
// peer is not dropped because one answer was short). first: the first
// answer since Start, which the elector waits for.
func (m *Msc) found(answer []string, first bool) {
	d := &m.disc
	seen := make(map[string]bool, len(answer))
	for _, a := range answer {
		na, err := normalizeAddr(strings.TrimSpace(a), 0)
		if err != nil {
			m.report(fmt.Errorf("%w: %w", ErrDiscovery, err))
			continue
		}
		seen[na] = true
	}
	d.mu.Lock()
	if d.ids == nil {
		d.ids, d.self = make(map[string]string), make(map[string]struct{})
	}
	var add []string
	for a := range seen {
		_, self := d.self[a]
		if _, ok := d.ids[a]; !ok && !self {
			add = append(add, a)
		}
	}
	for a := range d.self {
		if !seen[a] {
			delete(d.self, a)
		}
	}
	var gone []string // absent from the answer: drop if not connected
	for a, id := range d.ids {
		if !seen[a] {
			gone = append(gone, id)
		}
	}
	d.mu.Unlock()

	for _, id := range gone {
		m.mu.Lock()
		cl := m.clients[id]
		m.mu.Unlock()
		if cl != nil && cl.up.Load() {
			continue
		}
		m.dropDiscovered(strings.TrimPrefix(id, discoverPrefix), id)
		m.RemoveServer(id) // ErrUnknownServer: it was removed already
		m.cfg.Logger.Debug("msc: discovered server gone", "peer", id)
	}
	if len(add) > 0 {
		ids := make([]string, len(add))
		for i, a := range add {
			ids[i] = discoverPrefix + a
		}
		// While the node waits for its servers (at Start, or after a
		// pause), it waits for these too.
		m.call(func(e *elector) { e.core.AwaitServers(ids) })
		for i, a := range add {
			host, port, _ := net.SplitHostPort(a)
			p, _ := strconv.Atoi(port)
			cfg := ServerConfig{Host: host, Port: p}
			d.mu.Lock()
			d.ids[a] = ids[i]
			d.mu.Unlock()
			if err := m.addServer(ids[i], cfg, true); err != nil {
				m.dropDiscovered(a, ids[i])
				m.call(func(e *elector) { e.resolveNow(ids[i]) })
				continue
			}
			m.cfg.Logger.Debug("msc: discovered server", "peer", ids[i])
		}
	}
	if first {
		m.call(func(e *elector) { e.resolveNow(discoverWait) })
	}
}

// dropDiscovered forgets a discovered address, if id is still its server.
func (m *Msc) dropDiscovered(addr, id string) {
	m.disc.mu.Lock()
	if m.disc.ids[addr] == id {
		delete(m.disc.ids, addr)
	}
	m.disc.mu.Unlock()
}

// dialedSelf is called by a discovered server's client that found this
// node at the other end: the address is remembered as this node's own and
// no longer dialed, while answers keep naming it. The client returns.
func (m *Msc) dialedSelf(cl *client) {
	m.neverDial(cl)
	m.cfg.Logger.Debug("msc: discovered address is this node", "peer", cl.id)
}

// dialedMember is called by a discovered server's client that found a
// member at the other end, which this node keeps no connection to
// (Options.Voters): the address is no longer dialed, as its own. The
// client returns.
func (m *Msc) dialedMember(cl *client) { m.neverDial(cl) }

// neverDial stops dialing a discovered address for good: remembered
// with this node's own, it is not added again while answers name it.
func (m *Msc) neverDial(cl *client) {
	addr := strings.TrimPrefix(cl.id, discoverPrefix)
	m.disc.mu.Lock()
	if m.disc.ids[addr] == cl.id {
		delete(m.disc.ids, addr)
		m.disc.self[addr] = struct{}{}
	}
	m.disc.mu.Unlock()
	m.mu.Lock()
	if m.clients[cl.id] == cl {
		delete(m.clients, cl.id)
	}
	m.mu.Unlock()
	cl.cancel()
}
