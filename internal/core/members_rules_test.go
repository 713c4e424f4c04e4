package core

import (
	"fmt"
	"slices"
	"testing"
)

// The rules of voters and members (members.go), one small test each, as
// in core_rules_test.go. Each names the simulator seed that found it.

// newMembersCore makes self, holding keys, in a cluster whose voters are
// voters (self among them or not), with Quorum quorum and Sticky sticky,
// and dials servers on connections 1, 2, ... (a member dials voters; a
// voter is dialed by members: see inbound). A voter started 500 ms
// before, past the wait of its keys (keysWait), alone until now.
func newMembersCore(t *testing.T, voters []string, quorum int, sticky bool, keys []string, servers ...string) *ruleCore {
	t.Helper()
	cfg := Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait, Quorum: quorum, Sticky: sticky,
		Voters: map[string]bool{}}
	for _, v := range voters {
		cfg.Voters[v] = true
	}
	r := &ruleCore{t: t, now: 1000 * ms, ver: map[string]uint64{}}
	r.c = New(cfg, keys, nil)
	if cfg.Voters["self"] {
		r.c.Start(r.now-500*ms, servers)
		for at := r.now - 400*ms; at < r.now; at += 100 * ms {
			r.c.Tick(at)
		}
	} else {
		r.c.Start(r.now, servers)
	}
	for i, s := range servers {
		r.c.Up(r.now, ConnID(i+1), s, uint64(i))
	}
	return r
}

// inbound brings up connection id, dialed by a peer.
func (r *ruleCore) inbound(id ConnID) { r.c.Up(r.now, id, "", uint64(id)) }

// withTable sets a frame's relay table.
func withTable(t map[string]TableEntry) func(*Msg) { return func(b *Msg) { b.Table = t } }

// withVotes sets a frame's votes.
func withVotes(v map[string]Vote) func(*Msg) { return func(b *Msg) { b.Votes = v } }

// names is a table naming uid for key k, with acting as its master.
func names(k, uid, acting string) func(*Msg) {
	return withTable(map[string]TableEntry{k: {Rightful: uid, Acting: acting}})
}

var keyK = []string{"k"}

// tableOf returns self's table entry for k, as it sends it.
func (r *ruleCore) tableOf(k string) TableEntry {
	r.c.flush()
	return r.c.table[k]
}

// Without Quorum, a voter counts a member it named and no longer names as
// a master until the member answers a frame sent since (which carried the
// new table) without one: the member may be master on the old table, its
// claim still on the way. (Seed 91: two members master of k at once, each
// on a table of the one voter.)
func TestRuleRelayUnnamedMayBeMaster(t *testing.T) {
	r := newMembersCore(t, []string{"self"}, 0, false, nil)
	r.inbound(1)
	r.frame(1, "m1", younger, keyK, nil, 0)
	r.at(10).tick()
	if e := r.tableOf("k"); e.Rightful != "m1" || e.Acting != "" {
		t.Fatalf("table %+v, want m1 named, no master", e)
	}
	// m2, before m1, comes: m1 may have become master on the table before.
	r.inbound(2)
	r.at(20).frame(2, "m2", older, keyK, nil, 0)
	r.tick()
	if e := r.tableOf("k"); e.Rightful != "m2" || e.Acting != "m1" {
		t.Fatalf("table %+v, want m2 named, m1 maybe master", e)
	}
	// An answer to a frame sent before the change tells nothing.
	r.at(30).frame(1, "m1", younger, keyK, nil, 1000*ms)
	r.tick()
	if e := r.tableOf("k"); e.Acting != "m1" {
		t.Fatalf("table %+v after m1 answered an older frame, want m1 maybe master", e)
	}
	r.at(40).frame(1, "m1", younger, keyK, nil, 0)
	r.tick()
	if e := r.tableOf("k"); e.Rightful != "m2" || e.Acting != "" {
		t.Fatalf("table %+v once m1 answered without a claim, want m2 named, no master", e)
	}
}

// Without Quorum, a voter's naming settles once every other live voter
// has taken in the table that names it and names no other node: until
// then it names the node as master (no member is master on it). Two
// voters that see different holders name different members, each of
// which sees one voter only (members reconnecting one by one to voters
// that restarted). (Seed 71582555832474: two members master of a key.)
func TestRuleRelayNamingSettles(t *testing.T) {
	r := newMembersCore(t, []string{"self", "w"}, 0, false, nil, "w")
	r.frame(1, "w", younger, nil, nil, 0)
	r.inbound(2)
	r.at(10).frame(2, "m1", younger, keyK, nil, 0)
	r.tick()
	if e := r.tableOf("k"); e.Rightful != "m1" || e.Acting != "m1" {
		t.Fatalf("table %+v before w took it in, want m1 named, not settled", e)
	}
	r.at(20).frame(1, "w", younger, nil, nil, 0, names("k", "m2", ""))
	r.tick()
	if e := r.tableOf("k"); e.Rightful != "m1" || e.Acting != "m1" {
		t.Fatalf("table %+v while w names m2, want m1 named, not settled", e)
	}
	r.at(30).frame(1, "w", younger, nil, nil, 0, names("k", "m1", ""))
	r.tick()
	if e := r.tableOf("k"); e.Rightful != "m1" || e.Acting != "" {
		t.Fatalf("table %+v once w names m1 too, want m1 named, settled", e)
	}
}

// Without Quorum, a voter names no key's master and claims none of its
// own keys until WaitTimeout+M after its start: a member may be master on
// its previous incarnation's table, counted live until WaitTimeout after
// the member last heard from it. (Seed 30012006: the one voter, restarted
// at once after a crash, was master of its key beside the member master.)
func TestRuleRelayKeysWaitAfterStart(t *testing.T) {
	cfg := Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait, Voters: map[string]bool{"self": true}}
	r := &ruleCore{t: t, now: 1000 * ms, ver: map[string]uint64{}}
	r.c = New(cfg, keyK, nil)
	r.c.Start(r.now, nil)
	r.inbound(1)
	r.frame(1, "m", older, keyK, nil, 0)
	r.at(10).tick()
	if r.master("k") || r.tableOf("k").Rightful != "" {
		t.Fatalf("right after its start: master of k %v, names %q; want neither", r.master("k"), r.tableOf("k").Rightful)
	}
	if !r.master("") {
		t.Fatal("not the global master: the wait is the keys' only")
	}
	for at := int64(100); at <= 400; at += 100 {
		r.at(at).frame(1, "m", older, keyK, nil, 0)
		r.tick()
	}
	if e := r.tableOf("k"); e.Rightful != "m" {
		t.Fatalf("table %+v WaitTimeout+M after the start, want m named", e)
	}
}

// A member is master of a key once every live voter names it: a voter
// whose table does not name the key yet has not taken in the member's
// state, and may name another. (Seed 513: two members master at once,
// each named by one voter, the other voter's table without the key.)
func TestRuleMemberWaitsForEveryVoter(t *testing.T) {
	r := newMembersCore(t, []string{"v1", "v2"}, 0, false, keyK, "v1", "v2")
	r.frame(1, "v1", older, nil, nil, 0, names("k", "self", ""))
	r.frame(2, "v2", older, nil, nil, 0)
	r.at(10).tick()
	if r.master("k") {
		t.Fatal("master of k while v2 names no one")
	}
	r.at(20).frame(2, "v2", older, nil, nil, 0, names("k", "self", ""))
	r.tick()
	if !r.master("k") {
		t.Fatal("not master of k once both voters name self")
	}
}

// Without Quorum, a voter holding a key is not master of it while another
// voter names another node (a member it does not see yet), and is once
// every voter names it. (Seed 536: a voter restarted was master of a key
// at once, beside the member master on the other voter's table.)
func TestRuleVoterDefersToVotersTables(t *testing.T) {
	r := newMembersCore(t, []string{"self", "v2"}, 0, false, keyK, "v2")
	r.frame(1, "v2", younger, nil, nil, 0, names("k", "m", "m"))
	r.at(10).tick()
	if r.master("k") {
		t.Fatal("master of k while v2 names m")
	}
	r.at(20).frame(1, "v2", younger, nil, nil, 0, names("k", "self", ""))
	r.tick()
	if !r.master("k") {
		t.Fatal("not master of k once v2 names self")
	}
}

// With Quorum and Sticky, a member master keeps its mastership while a
// voter that names another does not know it is master (a voter that just
// started or connected); it steps down when one that knows names another
// (a higher priority). (Seed 267: a voter restarted named another member,
// and the master stepped down.)
func TestRuleStickyMemberKeepsWhileVoterUnaware(t *testing.T) {
	// The voter that does not know is the member's relay (v1, the first
	// voter), or the other one (v2: the member names no one while its
	// relay names itself, and its mastership stays all the same).
	for _, unaware := range []struct {
		id    ConnID
		voter string
	}{{1, "v1"}, {2, "v2"}} {
		r := newMembersCore(t, []string{"v1", "v2"}, 2, true, keyK, "v1", "v2")
		r.frame(1, "v1", older, nil, nil, 0, names("k", "self", ""))
		r.frame(2, "v2", older, nil, nil, 0, names("k", "self", ""))
		r.at(10).tick()
		i, _ := r.c.slotIndex("k")
		me := map[string]Vote{"k": {UID: "self", Inc: 1, Term: r.c.slots[i].Term}}
		if me["k"].Term == 0 {
			t.Fatal("self does not claim k")
		}
		r.at(20).frame(1, "v1", older, nil, nil, 0, names("k", "self", "self"), withVotes(me))
		r.frame(2, "v2", older, nil, nil, 0, names("k", "self", "self"), withVotes(me))
		r.tick()
		if !r.master("k") {
			t.Fatal("not master of k with both votes")
		}
		r.at(30).frame(unaware.id, unaware.voter, older, nil, nil, 0, names("k", "other", ""), withVotes(me))
		r.tick()
		if !r.master("k") {
			t.Fatalf("stepped down for a voter (%s) that does not know self is master", unaware.voter)
		}
		r.at(40).frame(unaware.id, unaware.voter, older, nil, nil, 0, names("k", "other", "self"), withVotes(me))
		r.tick()
		if r.master("k") {
			t.Fatalf("still master of k though a voter that knows (%s) names another", unaware.voter)
		}
	}
}

// With Sticky, a voter names a master while a newer state of it is on the
// way (announced by a frame, its full form not read yet): named by the
// rules meanwhile, another would depose it. (Seeds 14646 and 2357: the
// mastership went back and forth at each of the master's new states; a
// voter that reconnected deposed the master.)
func TestRuleRelayNamesStickyMasterInFlight(t *testing.T) {
	r := newMembersCore(t, []string{"self"}, 0, true, nil)
	r.inbound(1)
	r.inbound(2)
	r.frame(1, "m1", younger, keyK, map[string]Claim{"k": {Term: 1, Acting: true}}, 0)
	r.frame(2, "m2", older, keyK, nil, 0)
	r.at(10).tick()
	if e := r.tableOf("k"); e.Rightful != "m1" {
		t.Fatalf("table %+v, want m1, the master, named", e)
	}
	r.at(20).frame(1, "m1", younger, keyK, nil, 0, func(b *Msg) { b.Full = false })
	r.tick()
	if e := r.tableOf("k"); e.Rightful != "m1" {
		t.Fatalf("table %+v while m1's newest state is on the way, want m1 named", e)
	}
}

// A peer back from dead counts again once its newest state is known, not
// on the state it had when it went: with Sticky, a voter that took a
// member back as master of a key it gave up while cut off would name it
// and depose the master. (Seed 49275684.)
func TestRuleRelayPeerBackFromDeadWaitsForState(t *testing.T) {
	r := newMembersCore(t, []string{"self"}, 0, true, nil)
	r.inbound(1)
	r.inbound(2)
	r.frame(1, "m1", older, keyK, map[string]Claim{"k": {Term: 1, Acting: true}}, 0)
	r.frame(2, "m2", younger, keyK, nil, 0)
	r.at(10).tick()
	if e := r.tableOf("k"); e.Rightful != "m1" {
		t.Fatalf("table %+v, want m1, the master, named", e)
	}
	// m1 falls silent; m2 is named and becomes master.
	for at := int64(100); at <= 500; at += 100 {
		r.at(at).frame(2, "m2", younger, keyK, nil, 0)
		r.tick()
	}
	if e := r.tableOf("k"); e.Rightful != "m2" {
		t.Fatalf("table %+v with m1 silent, want m2 named", e)
	}
	r.at(510).frame(2, "m2", younger, keyK, map[string]Claim{"k": {Term: 2, Acting: true}}, 0)
	r.tick()
	// m1 is back: its first frame announces a newer state, not here yet.
	r.at(600).frame(1, "m1", older, nil, nil, 0, func(b *Msg) { b.Full = false })
	r.tick()
	if e := r.tableOf("k"); e.Rightful != "m2" {
		t.Fatalf("table %+v with m1 back, its state on the way: want m2, the master, named", e)
	}
	// Its state: it gave k up meanwhile.
	r.at(601).frame(1, "m1", older, keyK, nil, 0)
	r.tick()
	if e := r.tableOf("k"); e.Rightful != "m2" {
		t.Fatalf("table %+v with m1's state known, want m2, the Sticky master, named", e)
	}
}

// A member (or a voter) is not master on a table that takes it for master
// while it is not: the voter has not its state as it stands, and with
// Sticky names it for that alone. (Seed 10795: a member that had stepped
// down was master again on such a table, and the mastership went back
// and forth.)
func TestRuleNotMasterOnStaleTable(t *testing.T) {
	r := newMembersCore(t, []string{"v"}, 0, true, keyK, "v")
	r.frame(1, "v", older, nil, nil, 0, names("k", "self", "self"))
	r.at(10).tick()
	if r.master("k") {
		t.Fatal("master of k on a table that took self for master already")
	}
	r.at(20).frame(1, "v", older, nil, nil, 0, names("k", "self", ""))
	r.tick()
	if !r.master("k") {
		t.Fatal("not master of k once the voter names self, no master")
	}
}

// A member counts a mastership it gives up to another node a voter names
// (the simulator's Sticky check weighs the priorities), not one it gives
// up hearing from no voter. (Seed 148: the members' masterships lost with
// their voters counted as yields.)
func TestRuleMemberYields(t *testing.T) {
	for _, named := range []bool{false, true} {
		r := newMembersCore(t, []string{"v"}, 0, false, keyK, "v")
		r.frame(1, "v", older, nil, nil, 0, names("k", "self", ""))
		r.at(10).tick()
		if !r.master("k") {
			t.Fatal("not master of k")
		}
		if named {
			r.at(20).frame(1, "v", older, nil, nil, 0, names("k", "other", ""))
		} else {
			r.at(20).c.Down(r.now, 1, false)
		}
		r.tick()
		if want := map[bool]int{false: 0, true: 1}[named]; r.master("k") || r.c.Yields() != want {
			t.Fatalf("named %v: master %v, yields %d, want false, %d", named, r.master("k"), r.c.Yields(), want)
		}
	}
}

// Without Quorum, a member master whose voter closed their connection to
// redial (live by grace) is master only until FreshFor after the send
// time that voter last echoed: the voter may have lost its frames in
// flight, count it dead WaitTimeout after the last it read, and name
// another member. (Seed 30102850: a member paused just short of FreshFor
// stayed master beside the member its voter named next.)
func TestRuleMemberGraceLease(t *testing.T) {
	r := newMembersCore(t, []string{"v"}, 0, false, keyK, "v")
	r.frame(1, "v", older, nil, nil, 0, names("k", "self", ""))
	r.at(100).tick()
	r.frame(1, "v", older, nil, nil, 0, names("k", "self", ""))
	echo := r.c.sent
	if !r.master("k") {
		t.Fatal("not master of k")
	}
	r.at(110).frame(1, "v", older, nil, nil, echo, names("k", "self", ""), func(b *Msg) { b.Redial = true })
	r.c.Down(r.now, 1, false)
	r.at(200).tick()
	if !r.master("k") {
		t.Fatal("not master of k within FreshFor of the send v echoed")
	}
	r.at(100 + 251).tick()
	if r.master("k") {
		t.Fatal("master of k past FreshFor of the send v last echoed, v's connection closed to redial")
	}
}

// Without Quorum, a voter is master of its own key once its table names
// it, and no holder it named before may be master still: one that shares
// the UID of the one it named (a member's new incarnation) may be master
// on the table. (Seed 1844: the voter was master of its key in the step
// its table stopped naming a member's dead incarnation; the member's new
// one became master on the table before.)
func TestRuleVoterWaitsForUnnamed(t *testing.T) {
	r := newMembersCore(t, []string{"self"}, 0, false, keyK)
	r.inbound(1)
	r.inbound(2)
	r.frame(1, "m", older, keyK, nil, 0)
	r.frame(2, "m", younger, keyK, nil, 0, func(b *Msg) { b.Inc = 8 })
	r.at(10).tick()
	if e := r.tableOf("k"); e.Rightful != "m" || r.master("k") {
		t.Fatalf("table %+v, self master %v; want m named", e, r.master("k"))
	}
	r.at(20).c.Down(r.now, 1, false) // m's old incarnation is gone
	r.tick()
	if r.master("k") {
		t.Fatal("master of k while m's new incarnation may be master on the table that named m")
	}
	r.at(30).frame(2, "m", younger, keyK, nil, 0, func(b *Msg) { b.Inc = 8 })
	r.tick()
	if !r.master("k") {
		t.Fatal("not master of k once m answered the table that names self")
	}
}

// msgOf is the full frame of beat b, sent at sent, echoing echo.
func msgOf(b *Beat, sent, echo int64) *Msg {
	return &Msg{UID: b.UID, Start: b.Start, Inc: b.Inc, Prio: b.Prio, Sent: sent, Echo: echo, Version: b.Version,
		Leaving: b.Leaving, Full: true, Observer: b.Observer, Meta: b.Meta, Keys: b.Keys, Claims: b.Claims,
		Known: b.Known, Votes: b.Votes, Table: b.Table}
}

// A member learns term 5 of key b from voter v1 (b mastered by member
// m2). Then v1 and m2 crash, and voter v2, restarted (it forgot every
// term), connects with the member; v2 holds b and comes first. The
// member passes the terms it learns on: v2 claims b with a term above 5.
// (Seeds 45005824, 45020914, 45023547: a member that kept learned terms
// to itself let a restarted voter claim a term below one used before.)
func TestRuleMemberPassesTermsOn(t *testing.T) {
	voters := map[string]bool{"v1": true, "v2": true}
	m := New(Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait, Voters: voters}, []string{"b"}, nil)
	now := 1000 * ms
	var mBeat, vBeat *Beat
	take := func(c *Core, last **Beat) {
		if o := c.Out(); o != nil {
			if o.Beat != nil {
				*last = o.Beat
			}
			o.Reset()
		}
	}
	m.Start(now, []string{"v1"})
	take(m, &mBeat)
	m.Up(now, 1, "v1", 1)
	for ver, term := range []uint64{1, 3, 5} {
		now += int64(ruleInterval)
		tb := map[string]TableEntry{"b": {Rightful: "m2", Acting: "m2", Term: term}}
		m.Recv(now, now, 1, &Msg{UID: "v1", Start: 1, Inc: 1, Sent: now, Echo: m.Sent(), Version: uint64(ver + 1), Full: true, Table: tb})
		m.Tick(now)
		take(m, &mBeat)
	}
	if in := m.Inspect(now, "b"); in.Other != 5 {
		t.Fatalf("setup: member knows term %d", in.Other)
	}
	t.Logf("member's heartbeat: version %d, Known %v", mBeat.Version, mBeat.Known)
	// v1 crashes; v2 restarts and the member dials it.
	now += ms
	m.Down(now, 1, false)
	v2 := New(Config{UID: "v2", Start: selfAt + 1, Inc: 7, Prio: 1, Interval: ruleInterval, Wait: ruleWait, Voters: voters}, []string{"b"}, nil)
	v2.Start(now, nil)
	take(v2, &vBeat)
	m.AddServer(now, "v2")
	m.Up(now, 2, "v2", 2)
	v2.Up(now, 9, "", 2)
	for step := 0; step < 20; step++ {
		now += int64(ruleInterval)
		v2.Recv(now, now, 9, msgOf(mBeat, now, v2.Sent()))
		v2.Tick(now)
		take(v2, &vBeat)
		m.Recv(now, now, 2, msgOf(vBeat, now, m.Sent()))
		m.Tick(now)
		take(m, &mBeat)
	}
	st, _ := v2.Snap().Key("b")
	t.Logf("v2: %+v; member: %+v", st, m.Inspect(now, "b").Other)
	if st.Master && st.Term <= 5 {
		t.Fatalf("v2 master of b with term %d, not above 5, the term the member knew (fencing)", st.Term)
	}
}

// A voter whose table alone changed sends its new state at once to the
// other voters and to the members the changed entries name (before or
// after), and to the other members bulkDelay later, in one frame with
// whatever changed meanwhile: between processes on a few cores, a
// failover's three tables woke every member three times while the voters
// and the new master waited for the CPU (53 processes: a member's key
// failover took 35-45 ms; 4-5 ms once held back).
func TestRuleRelayTableGoesFirstToThoseConcerned(t *testing.T) {
	r := newMembersCore(t, []string{"self", "v2"}, 0, false, nil, "v2")
	r.frame(1, "v2", younger, nil, nil, 0)
	r.inbound(2)
	r.frame(2, "m1", older, keyK, nil, 0)
	r.inbound(3)
	r.frame(3, "m2", younger, keyK, nil, 0)
	r.inbound(4)
	r.frame(4, "m3", younger, []string{"j"}, nil, 0)
	for at := int64(10); at <= 50; at += 10 {
		r.at(at).tick()
		for id, p := range []string{"v2", "m1", "m2", "m3"} {
			start := map[string]int64{"v2": younger, "m1": older, "m2": younger, "m3": younger}[p]
			r.c.Recv(r.now, r.now, ConnID(id+1), &Msg{UID: p, Start: start, Inc: 7, Sent: r.now, Echo: r.c.sent, Version: r.ver[p], Reply: true})
		}
	}
	if e := r.tableOf("k"); e.Rightful != "m1" {
		t.Fatalf("setup: table %+v, want m1 named", e)
	}
	r.c.Out().Reset()
	// m1 crashes: the table names m2.
	r.at(60)
	r.c.Down(r.now, 2, false)
	r.c.flush()
	if e := r.tableOf("k"); e.Rightful != "m2" {
		t.Fatalf("after m1's crash: table %+v, want m2 named", e)
	}
	o := r.c.Out()
	if o.Kick || !slices.Equal(o.First, []ConnID{1, 3}) {
		t.Fatalf("the new table: kick %v, first %v; want no kick, first to v2 and m2 (connections 1, 3), m3 later", o.Kick, o.First)
	}
	o.Reset()
	r.at(60 + int64(r.c.bulkDelay())/ms - 1)
	r.c.Alarm(r.now)
	if o := r.c.Out(); o.Kick {
		t.Fatal("the members not concerned got the new table before bulkDelay")
	}
	if w := r.c.Wake(); w != 1000*ms+60*ms+int64(r.c.bulkDelay()) {
		t.Fatalf("wake-up at %d ms, want at bulkDelay after the change", (w-1000*ms)/ms)
	}
	// At bulkDelay the naming of m2 is not settled (v2 has not answered a
	// frame sent since): the others wait for it, up to Interval/2 after
	// the change (holdBulk).
	bulk, half := int64(r.c.bulkDelay())/ms, 60+int64(ruleInterval/2)/ms
	for at := 60 + bulk; at < half; at += bulk {
		r.at(at)
		r.c.Alarm(r.now)
		if o := r.c.Out(); o.Kick {
			t.Fatalf("the members not concerned got the new table %d ms after it, its naming not settled", at-60)
		}
		if w, by := r.c.Wake(), 1000*ms+min(at+bulk, half)*ms; w <= r.now || w > by {
			t.Fatalf("%d ms after the change: wake-up at %d ms, want by %d", at-60, (w-1000*ms)/ms, (by-1000*ms)/ms)
		}
	}
	r.at(half)
	r.c.Alarm(r.now)
	if o := r.c.Out(); !o.Kick {
		t.Fatal("the members not concerned did not get the new table Interval/2 after it")
	}
	// m4, before m2, comes: the table names it, and m2, no longer named,
	// hears of it at once too (it may be master; the voter waits for its
	// answer: stillUnnamed).
	r.c.Out().Reset()
	r.at(120)
	r.inbound(5)
	r.frame(5, "m4", selfAt, keyK, nil, 0)
	r.c.flush()
	if e := r.tableOf("k"); e.Rightful != "m4" {
		t.Fatalf("after m4 came: table %+v, want m4 named", e)
	}
	if o := r.c.Out(); o.Kick || !slices.Equal(o.First, []ConnID{1, 3, 5}) {
		t.Fatalf("the table naming m4: kick %v, first %v; want no kick, first to v2, m2 and m4 (connections 1, 3, 5)", o.Kick, o.First)
	}
	// v2 answers: the naming is settled, and the others get the table at
	// bulkDelay.
	r.c.Out().Reset()
	r.at(125).frame(1, "v2", younger, nil, nil, r.now)
	r.c.flush()
	r.at(120 + bulk)
	r.c.Alarm(r.now)
	if o := r.c.Out(); !o.Kick {
		t.Fatalf("the naming of m4 settled (table %+v): the members not concerned did not get it at bulkDelay", r.tableOf("k"))
	}
}

// A voter that learns a term of a key it does not hold passes it on in
// its table (TableEntry.Term), not as a known term of its own state: a
// change of the table alone, which goes first to those it concerns.
func TestRuleRelayPassesOthersTermsInTable(t *testing.T) {
	r := newMembersCore(t, []string{"self", "v2"}, 0, false, nil, "v2")
	r.frame(1, "v2", younger, nil, nil, 0)
	r.inbound(2)
	r.frame(2, "m1", older, keyK, nil, 0)
	r.at(10).tick()
	r.c.Out().Reset()
	r.at(20).frame(2, "m1", older, keyK, map[string]Claim{"k": {Term: 9, Acting: true}}, 0)
	r.c.flush()
	o := r.c.Out()
	if o.Beat == nil || o.Beat.Table["k"].Term != 9 || o.Beat.Known["k"] != 0 {
		t.Fatalf("after learning term 9 of k: state %+v; want it in the table only", o.Beat)
	}
	if o.Kick {
		t.Fatal("a term of a key the voter does not hold went to every member at once")
	}
}

// A voter's frames for a member alone carry only the entries of its table
// that name the member (writer.plan at the root); the others come later,
// in a frame of the same version when the voter's state has not changed
// since. A member takes that frame's entries in: it names the key's new
// master and term then, not at the voter's next version.
func TestRuleMemberTakesTableOfVersionKnown(t *testing.T) {
	r := newMembersCore(t, []string{"v"}, 0, false, []string{"j", "k"}, "v")
	send := func(version, base uint64, table map[string]TableEntry) {
		r.c.Recv(r.now, r.now, 1, &Msg{UID: "v", Start: older, Inc: 7, Sent: r.now, Echo: r.c.sent, Version: version,
			Full: true, Base: base, Table: table})
	}
	send(1, 0, map[string]TableEntry{"j": {Rightful: "m2", Acting: "m2", Term: 3}, "k": {Rightful: "m2", Acting: "m2", Term: 3}})
	r.at(10).tick()
	if st := r.c.Snap().State("k"); st.UID != "m2" || st.Term != 3 {
		t.Fatalf("k: %+v, want m2 master with term 3", st)
	}
	// Version 2, for self alone: nothing of the table names it.
	send(2, 1, map[string]TableEntry{})
	r.at(20).tick()
	// Version 2 again, whole: k moved to m3.
	send(2, 2, map[string]TableEntry{"k": {Rightful: "m3", Acting: "m3", Term: 4}})
	r.c.flush()
	if st := r.c.Snap().State("k"); st.UID != "m3" || st.Term != 4 {
		t.Fatalf("k after the frame that completes version 2: %+v, want m3 master with term 4", st)
	}
	if st := r.c.Snap().State("j"); st.UID != "m2" || st.Term != 3 {
		t.Fatalf("j: %+v, want m2 master with term 3 still", st)
	}
}

// The same, when the connection that carried the frame that left entries
// out closes before the voter completes them: the first frame of the new
// connection, the whole state of the version the member has, completes
// the table (a voter whose state does not change sends no other).
func TestRuleMemberTakesWholeTableOfVersionKnownOnNewConnection(t *testing.T) {
	r := newMembersCore(t, []string{"v"}, 0, false, []string{"j", "k"}, "v")
	send := func(id ConnID, version, base uint64, table map[string]TableEntry) {
		r.c.Recv(r.now, r.now, id, &Msg{UID: "v", Start: older, Inc: 7, Sent: r.now, Echo: r.c.sent, Version: version,
			Full: true, Base: base, Table: table})
	}
	send(1, 1, 0, map[string]TableEntry{"j": {Rightful: "m2", Acting: "m2", Term: 3}, "k": {Rightful: "m2", Acting: "m2", Term: 3}})
	r.at(10).tick()
	send(1, 2, 1, map[string]TableEntry{}) // for self alone: k left out
	r.at(20).tick()
	r.c.Down(r.now, 1, false)
	r.c.Up(r.now, 2, "v", 2)
	send(2, 2, 0, map[string]TableEntry{"j": {Rightful: "m2", Acting: "m2", Term: 3}, "k": {Rightful: "m3", Acting: "m3", Term: 4}})
	r.c.flush()
	if st := r.c.Snap().State("k"); st.UID != "m3" || st.Term != 4 {
		t.Fatalf("k after the new connection's whole state of version 2: %+v, want m3 master with term 4", st)
	}
}

// A voter whose naming of a member only the other voters' answers keep
// from settling sends its state again, as a new version, an Interval
// after the naming (the answer may have been lost with its connection:
// the frames after it repeat a version and reach no election), once per
// Interval; and not while another voter names another node, which
// answers do not change. (Seed 51416751: a key had no master for good.)
func TestRuleRelayReannouncesUnsettledNaming(t *testing.T) {
	for _, other := range []string{"m1", "m2"} {
		r := newMembersCore(t, []string{"self", "w"}, 0, false, nil, "w")
		r.inbound(2)
		r.at(10).frame(2, "m1", younger, keyK, nil, 0)
		r.frame(1, "w", younger, nil, nil, 1, names("k", other, "")) // w's answers are old
		r.tick()
		if e := r.tableOf("k"); e.Rightful != "m1" || e.Acting != "m1" {
			t.Fatalf("w names %s: table %+v, want m1 named, not settled", other, e)
		}
		v := r.c.version
		r.c.Out().Reset()
		r.at(10 + 100 - 1)
		r.c.Alarm(r.now)
		if r.c.version != v {
			t.Fatalf("w names %s: a new version before an Interval", other)
		}
		r.at(10 + 100)
		r.c.Alarm(r.now)
		o := r.c.Out()
		if other == "m2" {
			if r.c.version != v {
				t.Fatalf("w names m2: a new version, which w's answer does not change")
			}
			continue
		}
		if r.c.version != v+1 || o.Kick || !slices.Equal(o.First, []ConnID{1}) {
			t.Fatalf("w names m1: version %d (was %d), kick %v, first %v; want a new version to w (connection 1) first, no kick", r.c.version, v, o.Kick, o.First)
		}
		r.c.Out().Reset()
		r.at(10 + 150)
		r.c.Alarm(r.now)
		if r.c.version != v+1 {
			t.Fatal("w names m1: a second new version within an Interval")
		}
		// w answers it: settled.
		r.frame(1, "w", younger, nil, nil, 0, names("k", "m1", ""))
		if e := r.tableOf("k"); e.Rightful != "m1" || e.Acting != "" {
			t.Fatalf("after w's answer: table %+v, want m1 named, settled", e)
		}
	}
}

// unnamedBy makes self, the one voter (Sticky if sticky), name m1 for k
// on connection 1, then uid (started at start, claiming claims) on
// connection 2 at 20 ms, as the rules choose.
func unnamedBy(t *testing.T, sticky bool, uid string, start int64, claims map[string]Claim) *ruleCore {
	t.Helper()
	r := newMembersCore(t, []string{"self"}, 0, sticky, nil)
	r.inbound(1)
	r.frame(1, "m1", younger, keyK, nil, 0)
	r.at(10).tick()
	r.inbound(2)
	r.at(20).frame(2, uid, start, keyK, claims, 0)
	r.tick()
	return r
}

// Without Quorum, a voter that no longer names a member it named waits
// for the member's answer to a frame sent since, and asks again: each
// Interval a new version, to the member first. The member's first answer
// may be lost with its connection (closed to dedupe it, or cut), and its
// frames after it repeat one version, which the driver does not hand to
// the elector. (A reviewer's finding: the new term a waiting candidate
// took every WaitTimeout+M was that retry until it kept its term.)
func TestRuleRelayAsksUnnamedAgain(t *testing.T) {
	r := unnamedBy(t, false, "m2", older, nil) // m1 may be master on the table before
	if e := r.tableOf("k"); e.Rightful != "m2" || e.Acting != "m1" {
		t.Fatalf("table %+v, want m2 named, m1 maybe master", e)
	}
	v := r.c.version
	for at := int64(21); at < 20+100; at += 10 { // m1's frames repeat its state: heard only
		r.at(at).c.Heard(1, r.now)
		r.c.Out().Reset()
		r.c.Alarm(r.now)
		if r.c.version != v {
			t.Fatalf("at %d ms: a new version before an Interval", at)
		}
	}
	r.at(20+100).c.Heard(1, r.now)
	r.c.Out().Reset()
	r.c.Alarm(r.now)
	if o := r.c.Out(); r.c.version != v+1 || !slices.Contains(o.First, ConnID(1)) {
		t.Fatalf("an Interval on: version %d (was %d), first %v; want a new version, to m1 (connection 1) first", r.c.version, v, o.First)
	}
	r.at(121).frame(1, "m1", younger, keyK, nil, 0) // m1 answers it, master of nothing
	if e := r.tableOf("k"); e.Rightful != "m2" || e.Acting != "" {
		t.Fatalf("after m1's answer: table %+v, want m2 named, no master", e)
	}
}

// The voter asks again only while the entry takes the member it no longer
// names for the key's master: with Sticky, a live master (m3) named
// instead holds nothing back for it, and the member, which the entry no
// longer names, would not answer. (A reviewer's finding on the first
// version: a new version every Interval for as long as m3 was master.)
func TestRuleRelayAsksUnnamedOnlyWhileActing(t *testing.T) {
	r := unnamedBy(t, true, "m3", younger+1, map[string]Claim{"k": {Term: 5, Acting: true}})
	if e := r.tableOf("k"); e.Rightful != "m3" || e.Acting != "m3" {
		t.Fatalf("table %+v, want m3 named and master (Sticky)", e)
	}
	v := r.c.version
	for at := int64(100); at <= 1000; at += 100 { // m1's frames repeat its state: heard only
		r.at(at)
		r.c.Heard(1, r.now)
		r.c.Heard(2, r.now)
		r.tick()
	}
	if r.c.version != v {
		t.Fatalf("%d new versions in 9 Intervals, table %+v; want none: m3 is master, m1 not asked", r.c.version-v, r.tableOf("k"))
	}
}

// A peer's newer state brings its priority with it, even in a frame sent
// before one of the state before that was read already (two connections
// interleave); the frames of the new state after it repeat it and are
// not handed over. (Seed 51447918: a voter kept a member's old priority
// and named another holder of its key than the other voters, for good.)
func TestRuleNewerStateBringsPriority(t *testing.T) {
	r := newMembersCore(t, []string{"self"}, 0, false, nil)
	r.inbound(1)
	r.inbound(2)
	msg := func(version uint64, sent, prio int64) *Msg {
		return &Msg{UID: "m1", Start: younger, Inc: 7, Sent: sent, Echo: r.c.sent, Version: version, Prio: prio, Full: true, Keys: keyK}
	}
	r.c.Recv(r.now, r.now, 1, msg(1, r.now, 0))
	r.c.Recv(r.now, r.now, 1, msg(1, r.now+20*ms, 0)) // version 1 again, sent later
	r.c.Recv(r.now, r.now, 2, msg(2, r.now+10*ms, 3)) // version 2, priority 3, sent before it
	for _, p := range r.c.Inspect(r.now, "k").Peers {
		if p.UID == "m1" && p.Prio != 3 {
			t.Fatalf("m1's priority %d after its version 2, want 3", p.Prio)
		}
	}
}

// Without Quorum, a member answers a voter's new state at once only if it
// changed more than entries of its table that name other nodes: entries
// that name it, before or after (the voter waits for its answer to a
// table that no longer names it: TestRuleRelayUnnamedMayBeMaster), the
// voter's claims or known terms, its keys, its place in the order. With
// Quorum every new state is answered.
func TestRuleMemberAnswersTablesThatConcernIt(t *testing.T) {
	for _, quorum := range []int{0, 2} {
		voters := []string{"v"}
		if quorum > 0 {
			voters = []string{"v", "w"}
		}
		r := newMembersCore(t, voters, quorum, false, []string{"j", "k"}, voters...)
		version, prio := uint64(0), int64(0)
		answered := func(at int64, what string, base bool, table map[string]TableEntry, claims map[string]Claim) bool {
			t.Helper()
			r.at(at)
			r.c.Out().Reset()
			version++
			b := &Msg{UID: "v", Start: older, Inc: 7, Prio: prio, Sent: r.now, Echo: r.c.sent, Version: version, Full: true,
				Table: table, Claims: claims}
			if base {
				b.Base = version - 1
			}
			if b.Table == nil {
				b.Table = map[string]TableEntry{} // a delta with no entry changed
			}
			r.c.Recv(r.now, r.now, 1, b)
			r.c.flush()
			return slices.Contains(r.c.Out().Reply, ConnID(1))
		}
		both := func(uid string) TableEntry { return TableEntry{Rightful: uid, Acting: uid, Term: 3} }
		steps := []struct {
			what   string
			base   bool
			table  map[string]TableEntry
			claims map[string]Claim
			prio   int64
			quiet  bool // not answered without Quorum
		}{
			{"the first state, whole", false, map[string]TableEntry{"j": both("m2"), "k": both("m2")}, nil, 0, false},
			{"k moves from m2 to m3", true, map[string]TableEntry{"k": both("m3")}, nil, 0, true},
			{"j's term only", true, map[string]TableEntry{"j": {Rightful: "m2", Acting: "m2", Term: 4}}, nil, 0, true},
			{"k names self", true, map[string]TableEntry{"k": {Rightful: "self", Term: 3}}, nil, 0, false},
			{"k no longer names self", true, map[string]TableEntry{"k": both("m3")}, nil, 0, false},
			{"k's master known as self", true, map[string]TableEntry{"k": {Rightful: "m3", Acting: "self", Term: 5}}, nil, 0, false},
			{"nothing, while k's master is known as self (the voter waits: awaited)", true, nil, nil, 0, false},
			{"k back to m3 alone", true, map[string]TableEntry{"k": both("m3")}, nil, 0, false},
			{"the voter's claim", true, nil, map[string]Claim{"": {Term: 2, Acting: true}}, 0, false},
			{"the voter's priority", true, nil, nil, 1, false},
			{"a key removed from the table", true, map[string]TableEntry{"j": {}}, nil, 1, true},
			{"a whole state again", false, map[string]TableEntry{"j": both("m2"), "k": both("m3")}, nil, 1, false},
		}
		for i, s := range steps {
			prio = s.prio
			want := !s.quiet || quorum > 0
			if got := answered(int64(10*(i+1)), s.what, s.base, s.table, s.claims); got != want {
				t.Errorf("quorum %d, %s: answered %v, want %v", quorum, s.what, got, want)
			}
		}
	}
}

// The same across a voter's frame for this member alone and the frame
// that completes its version (writer.plan at the root): an entry that
// named the member in the first still counts as naming it before, when
// the next state moves it.
func TestRuleMemberAnswersAcrossCompletedFrames(t *testing.T) {
	r := newMembersCore(t, []string{"v"}, 0, false, []string{"j", "k"}, "v")
	answered := func(at int64, version, base uint64, table map[string]TableEntry) bool {
		t.Helper()
		r.at(at)
		r.c.Out().Reset()
		r.c.Recv(r.now, r.now, 1, &Msg{UID: "v", Start: older, Inc: 7, Sent: r.now, Echo: r.c.sent, Version: version,
			Full: true, Base: base, Table: table})
		r.c.flush()
		return slices.Contains(r.c.Out().Reply, ConnID(1))
	}
	m := func(uid string) TableEntry { return TableEntry{Rightful: uid, Acting: uid, Term: 3} }
	if !answered(10, 1, 0, map[string]TableEntry{"j": m("m2"), "k": m("m2")}) {
		t.Error("the first state, whole: not answered")
	}
	if !answered(20, 2, 1, map[string]TableEntry{"k": {Rightful: "self", Term: 3}}) {
		t.Error("version 2 for self alone, k names self: not answered")
	}
	if answered(30, 2, 2, map[string]TableEntry{"j": m("m3"), "k": {Rightful: "self", Term: 3}}) {
		t.Error("version 2 completed (not news): answered")
	}
	if answered(40, 3, 2, map[string]TableEntry{"j": m("m4")}) {
		t.Error("version 3 moves j alone: answered")
	}
	if !answered(50, 4, 3, map[string]TableEntry{"k": m("m3")}) {
		t.Error("version 4 moves k, which named self: not answered")
	}
	// A whole state (a new connection's first) that names self, then a
	// delta that moves that entry.
	if !answered(60, 5, 0, map[string]TableEntry{"j": m("m4"), "k": {Rightful: "self", Term: 4}}) {
		t.Error("version 5, whole: not answered")
	}
	if !answered(70, 6, 5, map[string]TableEntry{"k": m("m5")}) {
		t.Error("version 6 moves k, which named self in the whole state: not answered")
	}
	if st := r.c.Snap().State("j"); st.UID != "m4" {
		t.Errorf("j: %+v, want m4", st)
	}
}

// Without Quorum, a voter that re-joins after a pause shorter than
// WaitTimeout keeps its table until it is ready again, each holder it
// named taken as master: no member becomes master on it meanwhile (as on
// an empty table), and the members take in no change. After a longer
// pause (its peers may have counted it dead) it names no one until it is
// ready again. A suspend counts whole: the monotonic clock stood still
// for jump while the wall clock went on (WallClock). (A member a held
// entry names is not master on it: TestRuleNotMasterOnStaleTable.)
// (BenchmarkMembers/1000x1000: starved voters re-joined again and again,
// and each emptied and refilled its table of 1,000 entries on every
// member.)
func TestRuleRelayKeepsTableThroughShortPause(t *testing.T) {
	for _, c := range []struct {
		pause, jump int64 // ms since its last send, and of a suspend: past FreshFor (250 ms) in all
		held        bool
	}{{270, 0, true}, {320, 0, false}, {200, 80, true}, {200, 150, false}} {
		t.Run(fmt.Sprintf("pause=%dms,suspend=%dms", c.pause, c.jump), func(t *testing.T) {
			r := newMembersCore(t, []string{"self", "w"}, 0, false, nil, "w")
			r.inbound(2)
			r.at(10).frame(2, "m1", younger, keyK, nil, 0)
			r.frame(1, "w", younger, nil, nil, 0, names("k", "m1", ""))
			r.tick()
			r.at(20).frame(1, "w", younger, nil, nil, 0, names("k", "m1", ""))
			r.tick()
			settled := TableEntry{Rightful: "m1"}
			if e := r.tableOf("k"); e != settled {
				t.Fatalf("table %+v before the pause, want m1 named, settled", e)
			}
			r.at(20 + c.pause)
			if c.jump > 0 && !r.c.WallClock(r.now, r.now+c.jump*ms) {
				t.Fatalf("a suspend of %d ms not noticed", c.jump)
			}
			r.tick() // the first step after the pause
			if !r.c.rejoin || r.c.ready {
				t.Fatalf("rejoin %v, ready %v after a pause of %d ms and a suspend of %d; want re-joining", r.c.rejoin, r.c.ready, c.pause, c.jump)
			}
			want := TableEntry{}
			if c.held {
				want = TableEntry{Rightful: "m1", Acting: "m1"}
			}
			if e := r.tableOf("k"); e != want {
				t.Fatalf("table %+v while re-joining after %d+%d ms, want %+v", e, c.pause, c.jump, want)
			}
			// w answers a frame sent since: ready, m1 named and settled again.
			r.at(30+c.pause).frame(1, "w", younger, nil, nil, 0, names("k", "m1", ""))
			r.frame(2, "m1", younger, keyK, nil, 0)
			r.tick()
			if r.c.rejoin || !r.c.ready {
				t.Fatalf("rejoin %v, ready %v once w answered; want ready", r.c.rejoin, r.c.ready)
			}
			if e := r.tableOf("k"); e != settled {
				t.Fatalf("table %+v once ready, want m1 named, settled", e)
			}
		})
	}
}

// A member reads the masters of the keys it is not named for from one
// voter, its relay: the first live voter in order. It asks the others
// for only the entries of their tables that name it (NamedOnly), so
// their other entries may be stale on it: it names the node the relay
// names, not a master another voter named before (v2's entry here), and
// no one while the relay names itself. Once the relay is gone the next
// voter is, and the member asks it for every entry. A voter asks no one.
func TestRuleMemberNamesFromRelayVoter(t *testing.T) {
	r := newMembersCore(t, []string{"v1", "v2"}, 0, false, keyK, "v1", "v2")
	r.frame(1, "v1", older, nil, nil, 0, names("k", "m2", ""))   // m2 named, not master yet
	r.frame(2, "v2", older, nil, nil, 0, names("k", "m1", "m1")) // as v2 stood when it last sent k to self
	r.at(10).tick()
	if r.c.NamedOnly(1) || !r.c.NamedOnly(2) {
		t.Fatalf("asks v1 (the relay) for the entries naming it alone: %v, v2: %v; want false, true", r.c.NamedOnly(1), r.c.NamedOnly(2))
	}
	if st := r.c.snap.State("k"); st.UID != "m2" {
		t.Fatalf("names %q as the master of k, want m2, as its relay voter v1 does", st.UID)
	}
	r.at(20).c.Down(r.now, 1, false) // v1 gone: v2 is the relay
	r.tick()
	if r.c.NamedOnly(2) {
		t.Fatal("asks v2, its relay now, for the entries naming it alone")
	}
	if st := r.c.snap.State("k"); st.UID != "m1" {
		t.Fatalf("names %q as the master of k, want m1, as v2 does", st.UID)
	}
	// While the relay names self and another voter another node (its
	// entry perhaps of before, the node dead since), self names no one.
	r = newMembersCore(t, []string{"v1", "v2"}, 0, false, keyK, "v1", "v2")
	r.frame(1, "v1", older, nil, nil, 0, names("k", "self", "self")) // not settled among the voters yet
	r.frame(2, "v2", older, nil, nil, 0, names("k", "m1", "m1"))
	r.at(10).tick()
	if st := r.c.snap.State("k"); st.UID != "" || r.master("k") {
		t.Fatalf("names %q as the master of k (master itself: %v), want none: its relay names self, v2 m1", st.UID, r.master("k"))
	}
	v := newMembersCore(t, []string{"self", "v2"}, 0, false, keyK, "v2")
	v.frame(1, "v2", older, nil, nil, 0)
	v.at(10).tick()
	if v.c.NamedOnly(1) {
		t.Fatal("a voter asks another voter for the entries naming it alone")
	}
}
