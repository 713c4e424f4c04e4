package core

import (
	"slices"
	"testing"
)

// Found in review of partial elections (TestPartialElections never
// resigned a key, nor inspected a core before Start).

// A member re-adds a key whose RemoveKey is in progress (ResignKeys done,
// SetKeys(remove) not yet): it competes for it again at once, as a whole
// election does; the partial one had left it unclaimed for good.
func TestPartialReaddResignedKey(t *testing.T) {
	cfg := Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait,
		Voters: map[string]bool{"v1": true}}
	keys := []string{"a", "b"}
	cores := [2]*Core{New(cfg, keys, nil), New(cfg, keys, nil)}
	cores[1].SetPartial(false)
	now := 1000 * ms
	each := func(f func(c *Core)) {
		for _, c := range cores {
			f(c)
		}
	}
	each(func(c *Core) { c.Start(now, []string{"v1"}) })
	each(func(c *Core) { c.Up(now, 1, "v1", 1) })
	tb := map[string]TableEntry{"a": {Rightful: "self", Term: 1}, "b": {Rightful: "self", Term: 1}}
	each(func(c *Core) {
		c.Recv(now, now, 1, &Msg{UID: "v1", Start: 1, Inc: 1, Sent: now, Echo: c.Sent(), Version: 1, Full: true, Table: tb})
	})
	now += ms
	each(func(c *Core) { c.Alarm(now) })
	for _, c := range cores {
		if st, _ := c.Snap().Key("a"); !st.Master {
			t.Fatalf("setup: not master of a: %+v", st)
		}
	}
	now += ms
	each(func(c *Core) { c.ResignKeys(now, []string{"a"}) }) // RemoveKey, first step
	now += ms
	each(func(c *Core) { c.SetKeys(now, []string{"a"}, nil) }) // AddKey meanwhile
	for range 20 {
		now += int64(ruleInterval)
		each(func(c *Core) {
			c.Recv(now, now, 1, &Msg{UID: "v1", Start: 1, Inc: 1, Sent: now, Echo: c.Sent(), Version: 1})
			c.Tick(now)
		})
	}
	a, b := cores[0].Snap(), cores[1].Snap()
	if !slices.Equal(a.states(), b.states()) {
		t.Fatalf("partial %+v, whole %+v", a.states(), b.states())
	}
	if st, _ := a.Key("a"); !st.Master {
		t.Fatalf("a re-added: not master of it again: %+v", st)
	}
}

// Inspect before Start: the picks are sized on demand.
func TestInspectBeforeStart(t *testing.T) {
	c := New(Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait}, []string{"a"}, nil)
	if in := c.Inspect(0, "a"); in.Rightful != "self" {
		t.Fatalf("Inspect(a) before Start names %q, want self", in.Rightful)
	}
	c.Inspect(0, "")
}
