package core

import (
	"errors"
	"maps"
	"testing"
)

// TestRuleStateDelta: a peer's state arrives whole, then as deltas
// (Msg.Base): a delta changes only the claims it names (a claim that went
// is the zero Claim; a known term replaces a claim), its terms are
// learned, a second connection's deltas apply to what that connection
// carried, and a delta to a state the connection did not carry closes
// it, the peer's state unchanged.
func TestRuleStateDelta(t *testing.T) {
	keys := []string{"a", "b", "c"}
	c := New(Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait}, keys, nil)
	now := 1000 * ms
	c.Start(now, []string{"p"})
	c.Up(now, 1, "p", 1)
	c.Up(now, 2, "", 2)
	claimOf := func(k string) Claim {
		for _, p := range c.Inspect(now, k).Peers {
			if p.UID == "peer" {
				return p.Claim
			}
		}
		t.Fatalf("no peer")
		return Claim{}
	}
	claims := func() map[string]Claim {
		m := map[string]Claim{}
		for _, k := range append([]string{""}, keys...) {
			if cl := claimOf(k); cl != (Claim{}) {
				m[k] = cl
			}
		}
		return m
	}
	send := func(id ConnID, ver, base uint64, cl map[string]Claim, known map[string]uint64) {
		now += ms
		c.Recv(now, now, id, &Msg{UID: "peer", Start: selfAt - 1, Inc: 9, Sent: now, Echo: c.Sent(), Version: ver, Full: true,
			Keys: keys, Claims: cl, Known: known, Base: base})
		c.Alarm(now)
		c.Out().Reset()
	}
	whole := map[string]Claim{"": {Term: 4, Acting: true}, "a": {Term: 2, Acting: true}, "b": {Term: 3}}
	send(1, 1, 0, whole, map[string]uint64{"c": 7})
	if got := claims(); !maps.Equal(got, whole) {
		t.Fatalf("whole state: peer's claims %v, want %v", got, whole)
	}
	// a goes (known 5 instead), b becomes a mastership, c is claimed.
	send(1, 2, 1, map[string]Claim{"a": {}, "b": {Term: 3, Acting: true}, "c": {Term: 8}}, map[string]uint64{"a": 5})
	want := map[string]Claim{"": {Term: 4, Acting: true}, "b": {Term: 3, Acting: true}, "c": {Term: 8}}
	if got := claims(); !maps.Equal(got, want) {
		t.Fatalf("after a delta: peer's claims %v, want %v", got, want)
	}
	if in := c.Inspect(now, "a"); in.Other != 5 {
		t.Errorf("term of a learned from the delta: %d, want 5", in.Other)
	}
	if in := c.Inspect(now, "c"); in.Other != 8 || in.Rival != 8 {
		t.Errorf("terms of c learned from the delta: other %d rival %d, want 8, 8", in.Other, in.Rival)
	}
	// The message's map of the whole state is the sender's: a delta does
	// not change it.
	if whole["a"] != (Claim{Term: 2, Acting: true}) || len(whole) != 3 {
		t.Errorf("a delta changed the whole state's map: %v", whole)
	}
	// A second connection carries its own: a whole state at version 2,
	// then a delta on it.
	send(2, 2, 0, want, map[string]uint64{"a": 5})
	send(2, 3, 2, map[string]Claim{"c": {}}, map[string]uint64{"c": 8})
	want3 := map[string]Claim{"": {Term: 4, Acting: true}, "b": {Term: 3, Acting: true}}
	if got := claims(); !maps.Equal(got, want3) {
		t.Fatalf("after a delta on the second connection: peer's claims %v, want %v", got, want3)
	}
	// Connection 1 carried version 2: a delta from 3 on it does not apply
	// and closes it.
	now += ms
	c.Recv(now, now, 1, &Msg{UID: "peer", Start: selfAt - 1, Inc: 9, Sent: now, Echo: c.Sent(), Version: 4, Full: true,
		Keys: keys, Claims: map[string]Claim{"": {}}, Base: 3})
	o := c.Out()
	closed, reported := false, false
	for _, id := range o.Close {
		closed = closed || id == 1
	}
	for _, f := range o.Errs {
		reported = reported || f.Peer == "peer" && errors.Is(f.Err, ErrBadFrame)
	}
	o.Reset()
	if !closed || !reported {
		t.Errorf("a delta to a state the connection did not carry: connection closed %v, ErrBadFrame reported %v", closed, reported)
	}
	if got := claims(); !maps.Equal(got, want3) {
		t.Errorf("a refused delta changed the peer's claims: %v, want %v", got, want3)
	}
}
