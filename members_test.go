package msc

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// Voters and members (Options.Voters, docs/deploying.md, "Large clusters"): members
// dial only the voters, the global master is a voter, members master
// keys.

// newMembers builds v voters (node0..) and n-v members; every node is
// given the voters' addresses, and with all the members' too (a
// discovery that lists every pod). Members hold key "k" (Balance).
func newMembers(t testing.TB, v, n int, all bool, mod func(i int, o *Options)) *testCluster {
	t.Helper()
	voters := make([]string, v)
	for i := range voters {
		voters[i] = fmt.Sprintf("node%d", i)
	}
	c := &testCluster{t: t, dials: func(i, j int) bool { return all || j < v }}
	return buildCluster(c, n, func(i int, o *Options) {
		o.Voters = voters
		o.Balance = true
		if i >= v {
			o.Keys = []string{"k"}
		}
		if mod != nil {
			mod(i, o)
		}
	}, false)
}

// keyAgreed returns the UID every running node holding key names as its
// master, if they all name the same one and it alone is master; else "".
func keyAgreed(c *testCluster, key string) string {
	uid, masters := "", 0
	for _, m := range c.running() {
		if !slices.Contains(m.Keys(), key) {
			continue
		}
		u, ok := m.MasterByKey(key)
		if !ok || uid != "" && u != uid {
			return ""
		}
		uid = u
		if m.IsMasterByKey(key) {
			masters++
			if m.UID() != u {
				return ""
			}
		}
	}
	if masters != 1 {
		return ""
	}
	return uid
}

func (c *testCluster) byUID(uid string) *Msc {
	for _, m := range c.nodes {
		if m.UID() == uid {
			return m
		}
	}
	return nil
}

// describeKey lists each node's view of key.
func (c *testCluster) describeKey(key string) func() string {
	return func() string {
		var b strings.Builder
		for _, m := range c.nodes {
			u, ok := m.MasterByKey(key)
			fmt.Fprintf(&b, "%s: running=%v master=%v names=%q/%v global=%v\n", m.UID(), m.snap.Load().Running, m.IsMasterByKey(key), u, ok, m.IsMaster())
		}
		return b.String()
	}
}

// TestMembers: 3 voters and 6 members that know only the voters. The
// global master is the oldest voter; every node names it; a member's
// peers are the voters; the master of k is the member the rules name
// (Balance: of highest weight among the members holding k).
func TestMembers(t *testing.T) {
	c := newMembers(t, 3, 9, false, nil)
	c.start()
	c.waitMaster(c.nodes[0])
	var holders []string
	for _, m := range c.nodes[3:] {
		holders = append(holders, m.UID())
	}
	want := core.Owner("k", holders)
	waitFor(t, "every holder names the master of k", func() bool { return keyAgreed(c, "k") == want }, c.describeKey("k"))
	for i, m := range c.nodes {
		st := m.Status()
		var live []string
		for _, p := range st.Peers {
			if p.Live {
				live = append(live, p.UID)
			}
		}
		slices.Sort(live)
		if i >= 3 && !slices.Equal(live, []string{"node0", "node1", "node2"}) {
			t.Errorf("member %s: live peers %v, want the voters", m.UID(), live)
		}
		if i < 3 && len(live) != 8 {
			t.Errorf("voter %s: %d live peers %v, want 8", m.UID(), len(live), live)
		}
	}
}

// TestMemberNeverDialsMember: every node is given every address. The
// members close what they dialed to each other and stop dialing it; the
// voters stop dialing the members; the cluster elects as with the
// voters' addresses alone.
func TestMemberNeverDialsMember(t *testing.T) {
	c := newMembers(t, 3, 7, true, nil)
	c.start()
	c.waitMaster(c.nodes[0])
	waitFor(t, "k agreed", func() bool { return keyAgreed(c, "k") != "" }, c.describeKey("k"))
	dials := func() []uint64 {
		var d []uint64
		for _, m := range c.nodes {
			d = append(d, m.dials.Load())
		}
		return d
	}
	before := dials()
	since := time.Now()
	waitFor(t, "20 Intervals", func() bool { return time.Since(since) > 20*testInterval })
	if after := dials(); !slices.Equal(before, after) {
		t.Errorf("dials went on: %v, then %v", before, after)
	}
	for i, m := range c.nodes[3:] {
		for _, p := range m.Status().Peers {
			if p.Live && !slices.Contains([]string{"node0", "node1", "node2"}, p.UID) {
				t.Errorf("member node%d has member %s as a live peer", i+3, p.UID)
			}
		}
	}
}

// TestMemberKeyFailover: the member master of k crashes (its sockets
// closed, as by a killed process); the next member the rules name is
// master, named by every holder, well within WaitTimeout.
func TestMemberKeyFailover(t *testing.T) {
	for _, quorum := range []int{0, 2} {
		t.Run(fmt.Sprintf("quorum=%d", quorum), func(t *testing.T) {
			c := newMembers(t, 3, 8, false, func(i int, o *Options) { o.Quorum = quorum })
			c.start()
			var old string
			waitFor(t, "k agreed", func() bool { old = keyAgreed(c, "k"); return old != "" }, c.describeKey("k"))
			meter := meterKeyOverlap(c, "k")
			start := time.Now()
			c.byUID(old).abort()
			var now string
			waitFor(t, "k agreed again", func() bool { now = keyAgreed(c, "k"); return now != "" && now != old }, c.describeKey("k"))
			took := time.Since(start)
			if overlap := meter(); overlap > 0 {
				t.Errorf("two masters of k for %v", overlap)
			}
			// Without Quorum the crash is seen when the sockets close;
			// with it, after WaitTimeout+M at most (docs/quorum.md).
			bound := testWait
			if quorum > 0 {
				bound = 2*testWait + leaseMargin(testInterval, testWait)
			}
			if took > bound {
				t.Errorf("k moved from %s to %s in %v, want under %v", old, now, took, bound)
			}
			t.Logf("k: %s → %s in %v", old, now, took)
		})
	}
}

// meterKeyOverlap samples the holders of key until the returned function
// is called, which returns for how long two of them said master at once.
func meterKeyOverlap(c *testCluster, key string) func() time.Duration {
	var nodes []*Msc
	for _, m := range c.nodes {
		if slices.Contains(m.Keys(), key) {
			nodes = append(nodes, m)
		}
	}
	stop, done := make(chan struct{}), make(chan time.Duration)
	go func() {
		var overlap time.Duration
		last := time.Now()
		for {
			select {
			case <-stop:
				done <- overlap
				return
			default:
			}
			var first *Msc
			n := 0
			for _, m := range nodes {
				if m.IsMasterByKey(key) {
					if first == nil {
						first = m
					}
					n++
				}
			}
			if n > 1 && !first.IsMasterByKey(key) {
				n--
			}
			now := time.Now()
			if n > 1 {
				overlap += now.Sub(last)
			}
			last = now
			time.Sleep(100 * time.Microsecond)
		}
	}()
	return func() time.Duration { close(stop); return <-done }
}

// TestMemberWithoutVoters: every voter stops; a member is master of
// nothing and Healthy says why.
func TestMemberWithoutVoters(t *testing.T) {
	c := newMembers(t, 2, 5, false, nil)
	c.start()
	var old string
	waitFor(t, "k agreed", func() bool { old = keyAgreed(c, "k"); return old != "" }, c.describeKey("k"))
	c.nodes[0].Stop()
	c.nodes[1].Stop()
	waitFor(t, "no member master of k", func() bool {
		for _, m := range c.nodes[2:] {
			if m.IsMasterByKey("k") {
				return false
			}
		}
		return true
	}, c.describeKey("k"))
	err := c.byUID(old).Healthy()
	if !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), "voter") {
		t.Errorf("Healthy of a member that reaches no voter: %v", err)
	}
}

// syncBuf is a strings.Builder safe for concurrent writes (a Logger's).
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLargeMeshWarns: a node logs once, naming Voters, when it starts
// with more than 64 servers, or when a full mesh first passes 64 live
// peers; not with Voters set.
func TestLargeMeshWarns(t *testing.T) {
	warned := func(b *syncBuf) int { return strings.Count(b.String(), "Options.Voters") }
	// 65 servers at Start (nobody listens there).
	for _, voters := range [][]string{nil, {"node0"}} {
		var b syncBuf
		o := testOptions(0)
		o.Listener = listen(t)
		o.Voters = voters
		o.Logger = slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelWarn}))
		m, err := New(o)
		if err != nil {
			t.Fatal(err)
		}
		for j := range 65 {
			if err := m.AddServer(fmt.Sprint(j), ServerConfig{Port: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		m.Stop()
		if got, want := warned(&b), map[bool]int{true: 1, false: 0}[voters == nil]; got != want {
			t.Errorf("Voters %v, 65 servers: %d warnings, want %d: %s", voters, got, want, b.String())
		}
	}
	// A star: 65 nodes dial node0, which has no server of its own.
	var b syncBuf
	star := &testCluster{t: t, dials: func(i, j int) bool { return i > 0 && j == 0 }}
	c := buildCluster(star, 66, func(i int, o *Options) {
		if i == 0 {
			o.Logger = slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
	}, false)
	c.start()
	waitFor(t, "node0 sees 65 live peers", func() bool { return liveCount(c.nodes[0].Status()) == 65 })
	waitFor(t, "the warning", func() bool { return warned(&b) > 0 })
	c.stopAll()
	if n := warned(&b); n != 1 {
		t.Errorf("%d warnings, want 1: %s", n, b.String())
	}
}

// TestObserverMember: a member that is an Observer holds k but is never
// its master, nor the global master, and names the masters the others
// name.
func TestObserverMember(t *testing.T) {
	c := newMembers(t, 3, 6, false, func(i int, o *Options) { o.Observer = i == 3 })
	obs := c.nodes[3]
	var stop atomic.Bool
	var mastered atomic.Int64
	done := make(chan struct{})
	go func() { // a meter: the observer says master of nothing, ever
		defer close(done)
		for !stop.Load() {
			if obs.IsMasterByKey("k") || obs.IsMaster() {
				mastered.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	c.start()
	c.waitMaster(c.nodes[0])
	var want string
	waitFor(t, "the members but the observer agree on k's master", func() bool {
		want = ""
		for _, m := range c.nodes[4:] {
			uid, ok := m.MasterByKey("k")
			if !ok || want != "" && uid != want {
				return false
			}
			want = uid
		}
		return want != "" && want != obs.UID()
	}, c.describeKey("k"))
	waitFor(t, "the observer names k's master and the global one", func() bool {
		uid, ok := obs.MasterByKey("k")
		g, gok := obs.Master()
		return ok && uid == want && gok && g == c.nodes[0].UID()
	}, c.describeKey("k"))
	stop.Store(true)
	<-done
	if n := mastered.Load(); n != 0 {
		t.Fatalf("the observer member said master %d times", n)
	}
}

// namedFlags returns, for each connection of m that leads to a node (by
// UID), whether m asks it for only the entries of its table that name m
// (askNamed) and whether it asked m so (peerNamed).
func namedFlags(m *Msc) (asks, asked map[string]bool) {
	asks, asked = map[string]bool{}, map[string]bool{}
	m.call(func(e *elector) {
		for id, l := range e.links {
			if cn, ok := l.(*conn); ok {
				uid := e.core.PeerOn(id)
				asks[uid] = asks[uid] || cn.askNamed.Load()
				asked[uid] = asked[uid] || cn.peerNamed.Load()
			}
		}
	})
	return asks, asked
}

// TestMemberRelayVoter: a member reads the masters of the keys it is not
// named for from one voter (the first), and asks the others, with a
// header flag, for only the entries that name it; they leave the others
// out. When its relay voter dies, the member reads them from the next,
// which sends it its whole table again: the entries it left out while the
// member read from the first (a member's keys that moved while it lived)
// are named right.
func TestMemberRelayVoter(t *testing.T) {
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("j%03d", i)
	}
	c := newMembers(t, 3, 6, false, func(i int, o *Options) {
		if i >= 3 {
			o.Keys = keys
		}
	})
	c.start()
	agreed := func() bool {
		for _, k := range keys {
			if keyAgreed(c, k) == "" {
				return false
			}
		}
		return true
	}
	waitFor(t, "every key agreed", agreed, c.describeKey(keys[0]))
	m := c.nodes[3]
	waitFor(t, "the member asks node1 and node2 alone", func() bool {
		asks, _ := namedFlags(m)
		return !asks["node0"] && asks["node1"] && asks["node2"]
	})
	waitFor(t, "node1 reads the member's flag", func() bool {
		_, asked := namedFlags(c.nodes[1])
		return asked[m.UID()]
	})
	// A member dies: its keys move while node1 and node2 leave, in their
	// frames to m, the entries that name other members out.
	x := c.nodes[5]
	moved := 0
	for _, k := range keys {
		if x.IsMasterByKey(k) {
			moved++
		}
	}
	x.abort()
	waitFor(t, "every key agreed after a member died", agreed, c.describeKey(keys[0]))
	// m's relay dies: node1 now.
	c.nodes[0].abort()
	waitFor(t, "the member asks node2 alone", func() bool {
		asks, _ := namedFlags(m)
		return !asks["node1"] && asks["node2"]
	})
	waitFor(t, "every key agreed after the relay voter died", agreed, c.describeKey(keys[0]))
	t.Logf("%d keys moved from %s", moved, x.UID())
}
