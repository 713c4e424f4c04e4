package msc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// TestKeyRotation rotates a 3-node cluster's key at run time: every node
// accepts the new key, then each seals with it, then the old one is
// dropped. After each node's change, a new node configured as it is must
// connect with each of the others (one step behind, or level); node 0
// stays the one master throughout, and no frame fails authentication.
func TestKeyRotation(t *testing.T) {
	mc := newMesh(t, 3, func(i int, o *Options) { o.Key = "old key" })
	sees := func(m *Msc, uid string) bool {
		for _, p := range m.Status().Peers {
			if p.UID == uid && p.Live {
				return true
			}
		}
		return false
	}
	var mu sync.Mutex
	var authErrs []error
	for _, m := range mc.nodes {
		m.OnError(func(err error) {
			if errors.Is(err, ErrAuth) {
				mu.Lock()
				authErrs = append(authErrs, err)
				mu.Unlock()
			}
		})
	}
	mc.start()
	mc.waitSides(all3)
	// The connection of every pair up (one per pair).
	bothConns := func() bool {
		for _, m := range mc.nodes {
			st := m.Status()
			if len(st.Peers) != 2 {
				return false
			}
			for _, p := range st.Peers {
				if !p.Live || p.Conns != connsPerPair {
					return false
				}
			}
		}
		return mc.sidesHold(all3) == ""
	}
	waitFor(t, "the connection of every pair", bothConns)
	logs := make([]changeLog, 3)
	for i, m := range mc.nodes {
		logs[i].watch(m)
	}
	meter := meterOverlap(func() []*Msc { return mc.nodes })

	// probe starts a node configured as node i now is (key, accepted
	// keys), that dials node j; both must count each other live: the
	// handshake between the two configurations works.
	probe := func(key string, accept []string, j int) {
		t.Helper()
		o := testOptions(9)
		o.Key, o.AcceptKeys, o.UID = key, accept, "probe"
		o.Listener = listen(t)
		p, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		p.AddServer("j", ServerConfig{Port: port(mc.lns[j])})
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		waitFor(t, fmt.Sprintf("probe and node%d see each other", j), func() bool {
			return sees(p, mc.nodes[j].UID()) && sees(mc.nodes[j], "probe")
		})
	}
	steps := []struct {
		name   string
		key    string
		accept []string
	}{
		{"accept the new key", "old key", []string{"new key"}},
		{"seal with the new key", "new key", []string{"old key"}},
		{"drop the old key", "new key", nil},
	}
	for _, st := range steps {
		for i, m := range mc.nodes {
			if err := m.SetKey(st.key, st.accept...); err != nil {
				t.Fatal(err)
			}
			// Node i is one step ahead of the nodes after it, and level
			// with those before: it must talk with both.
			for j := range mc.nodes {
				if j != i {
					probe(st.key, st.accept, j)
				}
			}
		}
		if bad := mc.sidesHold(all3); bad != "" {
			t.Fatalf("after %q: %s", st.name, bad)
		}
	}
	overlap, who := meter.result()
	if overlap > 0 {
		t.Fatalf("two masters (%s) for %v during the rotation", who, overlap)
	}
	mu.Lock()
	if len(authErrs) > 0 {
		t.Fatalf("authentication failed during the rotation: %v", authErrs)
	}
	mu.Unlock()
	if g := logs[0].gains(); g != 0 {
		t.Fatalf("node0 lost and regained mastership %d times during the rotation", g)
	}
	for i := 1; i < 3; i++ {
		if g := logs[i].gains(); g != 0 {
			t.Fatalf("node%d became master during the rotation", i)
		}
	}
	// A node with only the old key is now refused.
	o := testOptions(9)
	o.Key, o.Listener = "old key", listen(t)
	stale, _ := New(o)
	stale.AddServer("0", ServerConfig{Port: port(mc.lns[0])})
	stale.Start()
	defer stale.Stop()
	waitFor(t, "old key refused", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(authErrs) > 0
	})
	if err := mc.nodes[0].SetKey(""); !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("SetKey(\"\"): %v", err)
	}
}

// connsPerPair is the number of connections each pair of nodes keeps: each
// node dials each peer, and the node of the larger UID closes the one it
// dialed once the other is up at both ends.
const connsPerPair = 1

// pairUp reports whether m counts the peer uid live over connsPerPair
// connections, each having carried its heartbeats.
func pairUp(m *Msc, uid string) bool {
	for _, p := range m.Status().Peers {
		if p.UID == uid && p.Live && p.Conns == connsPerPair {
			return true
		}
	}
	return false
}

// authLog records the ErrAuth reports of every node it watches.
type authLog struct {
	mu   sync.Mutex
	errs []string
}

func (l *authLog) watch(name string, m *Msc) {
	m.OnError(func(err error) {
		if errors.Is(err, ErrAuth) {
			l.mu.Lock()
			l.errs = append(l.errs, name+": "+err.Error())
			l.mu.Unlock()
		}
	})
}

func (l *authLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.errs)
}

// keyedCluster is 3 nodes in a full mesh whose servers are added with the
// key given explicitly (ServerConfig.Key, as a port of a Node msc
// configuration writes it) or not, and that change keys with SetKey or by
// restarting with new Options.
type keyedCluster struct {
	*testCluster
	explicit bool
	keys     []string // each node's sealing key now
	mu       sync.Mutex
	live     []*Msc // the nodes, for the overlap meter (guarded by mu)
	auth     *authLog
}

func (kc *keyedCluster) nodesNow() []*Msc {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	return slices.Clone(kc.live)
}

// restart stops node i and starts it again on its port with key and
// accept as Options.Key and Options.AcceptKeys (a rolling restart).
func (kc *keyedCluster) restart(i int, key string, accept []string) {
	kc.t.Helper()
	kc.keys[i] = key
	kc.testCluster.restart(i, func(o *Options) { o.Key, o.AcceptKeys = key, accept })
}

func newKeyedCluster(t *testing.T, explicit bool, key string) *keyedCluster {
	kc := &keyedCluster{explicit: explicit, keys: []string{key, key, key}, live: make([]*Msc, 3), auth: &authLog{}}
	c := &testCluster{t: t,
		server: func(i, j int, sc *ServerConfig) {
			if kc.explicit {
				sc.Algorithm, sc.Key = "aes128", kc.keys[i]
			}
		},
		made: func(i int, m *Msc) {
			kc.auth.watch(fmt.Sprint("node", i), m)
			kc.mu.Lock()
			kc.live[i] = m
			kc.mu.Unlock()
		},
	}
	kc.testCluster = buildCluster(c, 3, func(i int, o *Options) { o.Key = key }, false)
	kc.start()
	return kc
}

// waitFor polls cond until it holds, or fails the test with what, and the
// authentication failures reported so far.
func (kc *keyedCluster) waitFor(what string, cond func() bool) {
	kc.t.Helper()
	deadline := time.Now().Add(settle)
	for !cond() {
		if time.Now().After(deadline) {
			kc.t.Fatalf("timed out waiting for %s; authentication failures:\n%s", what, strings.Join(kc.auth.get(), "\n"))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitPairs waits until every pair of nodes is up over all its
// connections.
func (kc *keyedCluster) waitPairs(what string) {
	kc.t.Helper()
	kc.waitFor(what+": every pair up over every connection", func() bool {
		for i, m := range kc.nodes {
			for j, p := range kc.nodes {
				if i != j && !pairUp(m, p.UID()) {
					return false
				}
			}
		}
		return true
	})
}

// probe starts a new node configured as node i is now, which dials node j
// and is dialed by it: the handshake between the two configurations must
// work from both sides, the new node dialing and listening.
func (kc *keyedCluster) probe(i, j int, accept []string) {
	t := kc.t
	t.Helper()
	o := testOptions(9)
	o.Key, o.AcceptKeys, o.UID = kc.keys[i], accept, "probe"
	o.Listener = listen(t)
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	kc.auth.watch("probe", p)
	sc := ServerConfig{Port: port(kc.lns[j])}
	back := ServerConfig{Port: port(o.Listener)}
	if kc.explicit {
		sc.Algorithm, sc.Key = "aes128", kc.keys[i]
		back.Algorithm, back.Key = "aes128", kc.keys[j]
	}
	if err := p.AddServer("j", sc); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	nj := kc.nodes[j]
	if err := nj.AddServer("probe", back); err != nil {
		t.Fatal(err)
	}
	defer nj.RemoveServer("probe")
	kc.waitFor(fmt.Sprintf("probe configured as node%d and node%d up both ways", i, j), func() bool {
		return pairUp(p, nj.UID()) && pairUp(nj, "probe")
	})
}

// TestKeyRotationEveryConfiguration runs docs/security.md's three-step rotation
// (accept the new key; seal with it; drop the old) over 3 nodes, with the
// servers' keys given explicitly or not, by SetKey or by rolling restarts
// with Options.Key and Options.AcceptKeys. After each node's change every
// pair must be up over every connection, and a new node configured as the
// changed one must connect both ways with each of the others (one step
// behind it, or level). No frame may fail authentication; where node 0 is
// not restarted it stays the one master throughout. At the end, a node
// with only the old key is refused, dialing and dialed.
func TestKeyRotationEveryConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name     string
		explicit bool
		restart  []bool // per node: change by restarting, else by SetKey
	}{
		{"SetKey, explicit server keys", true, []bool{false, false, false}},
		{"restarts, explicit server keys", true, []bool{false, true, true}},
		{"restarts, server keys inherited", false, []bool{false, true, true}},
		{"restarts of every node, explicit server keys", true, []bool{true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := newKeyedCluster(t, tc.explicit, "old key")
			kc.waitPairs("start")
			kc.waitMaster(kc.nodes[0])
			var logs [3]changeLog
			watching := !tc.restart[0]
			var meter *overlapMeter
			if watching {
				for i, m := range kc.nodes {
					logs[i].watch(m)
				}
				meter = meterOverlap(kc.nodesNow)
			}
			steps := []struct {
				name   string
				key    string
				accept []string
			}{
				{"accept the new key", "old key", []string{"new key"}},
				{"seal with the new key", "new key", []string{"old key"}},
				{"drop the old key", "new key", nil},
			}
			for _, st := range steps {
				for i := range kc.nodes {
					if tc.restart[i] {
						kc.restart(i, st.key, st.accept)
						if watching {
							logs[i].watch(kc.nodes[i])
						}
					} else {
						if err := kc.nodes[i].SetKey(st.key, st.accept...); err != nil {
							t.Fatal(err)
						}
						kc.keys[i] = st.key
					}
					what := fmt.Sprintf("%s, node%d changed", st.name, i)
					kc.waitPairs(what)
					kc.waitMaster(kc.nodes[0])
					for j := range kc.nodes {
						if j != i {
							kc.probe(i, j, st.accept)
						}
					}
					if errs := kc.auth.get(); len(errs) > 0 {
						t.Fatalf("%s: authentication failed:\n%s", what, strings.Join(errs, "\n"))
					}
				}
			}
			if watching {
				if overlap, who := meter.result(); overlap > 0 {
					t.Fatalf("two masters (%s) for %v during the rotation", who, overlap)
				}
				if g := logs[0].gains(); g != 0 {
					t.Fatalf("node0 lost and regained mastership %d times: %+v", g, logs[0].got)
				}
				for i := 1; i < 3; i++ {
					if g := logs[i].gains(); g != 0 {
						t.Fatalf("node%d became master during the rotation", i)
					}
				}
			}
			kc.refusesOldKey()
		})
	}
}

// refusesOldKey checks that node 0 refuses a node that has only the old
// key, both when that node dials it and when node 0 dials that node.
func (kc *keyedCluster) refusesOldKey() {
	t := kc.t
	t.Helper()
	errs := watchErrors(kc.nodes[0])
	o := testOptions(9)
	o.Key, o.UID, o.Listener = "old key", "stale", listen(t)
	stale, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	staleErrs := watchErrors(stale)
	stale.AddServer("0", ServerConfig{Port: port(kc.lns[0])})
	if err := stale.Start(); err != nil {
		t.Fatal(err)
	}
	defer stale.Stop()
	sc := ServerConfig{Port: port(o.Listener)}
	if kc.explicit {
		sc.Algorithm, sc.Key = "aes128", kc.keys[0]
	}
	kc.nodes[0].AddServer("stale", sc)
	defer kc.nodes[0].RemoveServer("stale")
	waitFor(t, "the old key refused both ways", func() bool {
		dialed, dialing := false, false
		for _, pe := range errs.peerErrors(ErrAuth) {
			if pe.Peer == "stale" {
				dialing = true
			} else {
				dialed = true
			}
		}
		return dialed && dialing && len(staleErrs.peerErrors(ErrAuth)) > 0
	})
	for _, m := range []*Msc{kc.nodes[0], stale} {
		for _, p := range m.Status().Peers {
			if p.Live && (p.UID == "stale" || m == stale) {
				t.Fatalf("%s counts %s live", m.UID(), p.UID)
			}
		}
	}
}

// startNode starts a node with key and accept, and servers (id → port)
// given the key explicitly; it records ErrAuth in auth.
func startNode(t *testing.T, auth *authLog, uid string, i int, key string, accept []string, ln net.Listener, servers map[string]ServerConfig) *Msc {
	t.Helper()
	o := testOptions(i)
	o.UID, o.Key, o.AcceptKeys, o.Listener = uid, key, accept, ln
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	for id, sc := range servers {
		if err := m.AddServer(id, sc); err != nil {
			t.Fatal(err)
		}
	}
	auth.watch(uid, m)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop() })
	return m
}

// livePeer reports whether m counts uid live.
func livePeer(m *Msc, uid string) bool {
	for _, p := range m.Status().Peers {
		if p.UID == uid && p.Live {
			return true
		}
	}
	return false
}

// TestRotationListenerAnswersInDialerKey: the listener's side. Each node
// has its own key, and a peer dials it with that key given per server (the
// Node package's model). The listener rotates its key: it seals with the
// new one and still accepts the old, which the dialer still uses and the
// dialer knows nothing else. The listener must answer in the old key.
func TestRotationListenerAnswersInDialerKey(t *testing.T) {
	auth := &authLog{}
	lnL := listen(t)
	l := startNode(t, auth, "listener", 0, "listener new key", []string{"listener old key"}, lnL, nil)
	d := startNode(t, auth, "dialer", 1, "dialer key", nil, listen(t), map[string]ServerConfig{
		"l": {Port: port(lnL), Algorithm: "aes128", Key: "listener old key"},
	})
	waitFor(t, "dialer and listener live to each other", func() bool {
		if errs := auth.get(); len(errs) > 0 {
			t.Fatalf("authentication failed:\n%s", strings.Join(errs, "\n"))
		}
		return livePeer(d, "listener") && livePeer(l, "dialer")
	})
	// A dialer with a key the listener does not accept is refused, by
	// both ends.
	e := watchErrors(l)
	bad := &authLog{}
	startNode(t, bad, "stranger", 2, "dialer key", nil, listen(t), map[string]ServerConfig{
		"l": {Port: port(lnL), Algorithm: "aes128", Key: "another key"},
	})
	waitFor(t, "the stranger refused by both ends", func() bool {
		return len(e.peerErrors(ErrAuth)) > 0 && len(bad.get()) > 0
	})
	if livePeer(l, "stranger") {
		t.Fatal("the listener counts the stranger live")
	}
}

// TestRotationDialerOpensAcceptedKeys: the dialer's side. A node dials a
// server with a key of the server's own (ServerConfig.Key) while the node
// accepts another key (Options.AcceptKeys), in which the server answers
// (as a listener that seals with its own key does, mid-rotation). The
// dialer must open it. The server is played by hand.
func TestRotationDialerOpensAcceptedKeys(t *testing.T) {
	auth := &authLog{}
	ln := listen(t)
	d := startNode(t, auth, "dialer", 1, "dialer key", []string{"server new key"}, listen(t), map[string]ServerConfig{
		"s": {Port: port(ln), Algorithm: "aes128", Key: "server old key"},
	})
	sealWith, _ := newSuite("aes128", "server new key")
	openWith, _ := newSuite("aes128", "server old key")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(stop); ln.Close(); wg.Wait() })
	served := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		served <- serveRawListener(ln, "server", sealWith, openWith, stop)
	}()
	waitFor(t, "the dialer counts the hand-played server live", func() bool {
		if errs := auth.get(); len(errs) > 0 {
			t.Fatalf("authentication failed:\n%s", strings.Join(errs, "\n"))
		}
		select {
		case err := <-served:
			t.Fatalf("the server's connection ended: %v", err)
		default:
		}
		return livePeer(d, "server")
	})
}

// serveRawListener accepts one connection on ln and plays a listener that
// seals with one suite and opens with another: it answers the dialer's
// hello, opens the dialer's first heartbeat, then sends full heartbeats
// every testInterval until stop.
func serveRawListener(ln net.Listener, uid string, sealWith, openWith *suite, stop chan struct{}) error {
	nc, err := ln.Accept()
	if err != nil {
		return err
	}
	defer nc.Close()
	go func() { <-stop; nc.Close() }()
	mine := bytes.Repeat([]byte{3}, nonceSize)
	if _, err := nc.Write(appendHello(nil, sealWith.id, mine)); err != nil {
		return err
	}
	f, _, err := readFrame(nc, nil)
	if err != nil {
		return err
	}
	theirs := bytes.Clone(f.body[1:])
	send, err := sealWith.sessionAEAD(theirs, mine)
	if err != nil {
		return err
	}
	recv, err := openWith.sessionAEAD(theirs, mine)
	if err != nil {
		return err
	}
	if f, _, err = readFrame(nc, nil); err != nil {
		return err
	}
	if _, err := newSealer(recv, dirFromDialer).open(nil, f.hdr, f.body, f.seq); err != nil {
		return fmt.Errorf("the dialer's first frame: %w", err)
	}
	s := newSealer(send, dirFromListener)
	b := &core.Beat{UID: uid, Start: base.Add(time.Hour).UnixNano(), Inc: 1, Version: 1}
	p, _ := encodeBeat(b, true)
	go io.Copy(io.Discard, nc)
	for seq := uint64(1); ; seq++ {
		if _, err := nc.Write(sealBeat(s, p, uid, seq, false)); err != nil {
			return err
		}
		select {
		case <-stop:
			return nil
		case <-time.After(testInterval):
		}
	}
}

// TestSetKeyExplicitServerKeys: SetKey moves the servers added with the
// node's key given explicitly to the new key, and leaves a server added
// with a key of its own on that key. Each server is then replaced by a
// node that knows only the key the node should now dial it with.
func TestSetKeyExplicitServerKeys(t *testing.T) {
	auth := &authLog{}
	lnP, lnQ := listen(t), listen(t)
	n := startNode(t, auth, "n", 0, "cluster key", nil, listen(t), map[string]ServerConfig{
		"p": {Port: port(lnP), Algorithm: "aes128", Key: "cluster key"},
		"q": {Port: port(lnQ), Algorithm: "aes128", Key: "q key"},
	})
	p := startNode(t, auth, "p", 1, "cluster key", []string{"new cluster key"}, lnP, nil)
	q := startNode(t, auth, "q", 2, "q key", nil, lnQ, nil)
	waitFor(t, "n counts p and q live", func() bool { return livePeer(n, "p") && livePeer(n, "q") })
	if err := n.SetKey("new cluster key", "cluster key"); err != nil {
		t.Fatal(err)
	}
	// Replace p and q by nodes that accept only the key n must dial
	// them with now.
	replace := func(old *Msc, ln net.Listener, uid string, i int, key string) {
		addr := ln.Addr().String()
		old.Stop()
		var ln2 net.Listener
		waitFor(t, "port free again", func() bool {
			var err error
			ln2, err = net.Listen("tcp", addr)
			return err == nil
		})
		startNode(t, auth, uid+"'", i, key, nil, ln2, nil)
	}
	replace(p, lnP, "p", 1, "new cluster key")
	replace(q, lnQ, "q", 2, "q key")
	waitFor(t, "n counts p' and q' live", func() bool {
		if errs := auth.get(); len(errs) > 0 {
			t.Fatalf("authentication failed:\n%s", strings.Join(errs, "\n"))
		}
		return livePeer(n, "p'") && livePeer(n, "q'")
	})
}

// TestSetKeyMovesServersOnTheReplacedKey: which key a node dials each
// server with, through a sequence of SetKey calls. A server whose own key
// becomes the node's key follows the node's key from then on.
func TestSetKeyMovesServersOnTheReplacedKey(t *testing.T) {
	m, err := New(Options{Key: "a", Listener: listen(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop() })
	for id, key := range map[string]string{"implicit": "", "explicit a": "a", "own b": "b", "own z": "z"} {
		if err := m.AddServer(id, ServerConfig{Port: 1, Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	derive := func(pass string) []byte {
		s, err := newSuite("aes128", pass)
		if err != nil {
			t.Fatal(err)
		}
		return s.key
	}
	check := func(step string, want map[string]string, opens map[string][]string) {
		t.Helper()
		for id, pass := range want {
			s := m.dialSuite(m.clients[id])
			if !bytes.Equal(s.key, derive(pass)) {
				t.Errorf("%s: server %q is not dialed with key %q", step, id, pass)
			}
			for _, o := range opens[id] {
				if !s.has(derive(o)) {
					t.Errorf("%s: server %q does not open with key %q", step, id, o)
				}
			}
		}
	}
	check("start", map[string]string{"implicit": "a", "explicit a": "a", "own b": "b", "own z": "z"}, nil)
	if err := m.SetKey("b", "a"); err != nil {
		t.Fatal(err)
	}
	check("SetKey(b, a)", map[string]string{"implicit": "b", "explicit a": "b", "own b": "b", "own z": "z"},
		map[string][]string{"own z": {"a"}, "implicit": {"a"}})
	if err := m.SetKey("c", "b"); err != nil {
		t.Fatal(err)
	}
	check("SetKey(c, b)", map[string]string{"implicit": "c", "explicit a": "c", "own b": "c", "own z": "z"},
		map[string][]string{"own z": {"b"}})
}
