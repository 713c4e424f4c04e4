package core

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPartialElections drives two members without Quorum through the same
// schedule: three voters that send tables whole and as deltas (naming
// this member or another, with or without a master), go silent, close
// and reopen their connections, hold keys of their own, and this member
// changing its keys (resigning some, as RemoveKey does first) and its
// priority. One elects partially (the
// default), the other always whole (SetPartial(false)). After every step
// their snapshots, their claims and their versions must be the same.
func TestPartialElections(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			pool := make([]string, 70)
			for i := range pool {
				pool[i] = fmt.Sprintf("k%02d", i)
			}
			voters := []string{"v1", "v2", "v3"}
			cfg := Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait,
				Voters: map[string]bool{"v1": true, "v2": true, "v3": true}, Balance: seed%2 == 0}
			own := pool[:40+rng.IntN(30)]
			cores := [2]*Core{New(cfg, own, nil), New(cfg, own, nil)}
			cores[1].SetPartial(false)
			now := 1000 * ms
			for _, c := range cores {
				c.Start(now, voters)
			}
			type vstate struct {
				up      bool
				conn    ConnID
				ver     uint64
				sentVer uint64 // the version whose table the connection carried last
				table   map[string]TableEntry
				keys    []string
				claims  map[string]Claim
			}
			vs := make([]*vstate, 3)
			for i := range vs {
				vs[i] = &vstate{table: map[string]TableEntry{}}
			}
			nextConn := ConnID(1)
			each := func(f func(c *Core)) {
				for _, c := range cores {
					f(c)
				}
			}
			// Each key has a node the voters mostly agree on (self for
			// half of them), so that this member masters keys, and
			// loses them when a voter names another.
			pref := map[string]string{}
			for _, k := range pool {
				pref[k] = []string{"self", "m2"}[rng.IntN(2)]
			}
			entry := func(k string) TableEntry {
				if rng.IntN(10) < 8 {
					return TableEntry{Rightful: pref[k], Term: 1}
				}
				named := []string{"self", "m2", "m3", ""}[rng.IntN(4)]
				acting := ""
				if named != "" && rng.IntN(2) == 0 {
					acting = named
				} else if rng.IntN(4) == 0 {
					acting = "m9"
				}
				return TableEntry{Rightful: named, Acting: acting, Term: uint64(rng.IntN(5))}
			}
			send := func(i int, delta bool) {
				v := vs[i]
				v.ver++
				var tb map[string]TableEntry
				base := uint64(0)
				if delta && v.sentVer != 0 {
					tb, base = map[string]TableEntry{}, v.sentVer
					for range 1 + rng.IntN(4) {
						k := pool[rng.IntN(len(pool))]
						e := entry(k)
						if rng.IntN(8) == 0 {
							e = TableEntry{} // removed
							delete(v.table, k)
						} else {
							v.table[k] = e
						}
						tb[k] = e
					}
				} else {
					for range 1 + rng.IntN(len(pool)) {
						k := pool[rng.IntN(len(pool))]
						v.table[k] = entry(k)
					}
					tb = maps.Clone(v.table)
				}
				v.sentVer = v.ver
				b := &Msg{UID: voters[i], Start: int64(i + 1), Inc: 1, Sent: now, Echo: 0, Version: v.ver, Full: true,
					Keys: v.keys, Claims: v.claims, Table: tb, Base: base}
				each(func(c *Core) {
					m := *b
					m.Echo = c.Sent()
					c.Recv(now, now, v.conn, &m)
				})
			}
			for step := range 400 {
				now += ms * int64(1+rng.IntN(40))
				i := rng.IntN(3)
				v := vs[i]
				switch r := rng.IntN(20); {
				case !v.up:
					v.up, v.conn, v.sentVer = true, nextConn, 0
					nextConn++
					each(func(c *Core) { c.Up(now, v.conn, voters[i], uint64(v.conn)) })
					send(i, false)
				case r == 0:
					v.up = false
					silent := rng.IntN(2) == 0
					each(func(c *Core) { c.Down(now, v.conn, silent) })
				case r == 1:
					each(func(c *Core) { c.Tick(now) })
				case r == 2:
					k := pool[rng.IntN(len(pool))]
					if rng.IntN(2) == 0 {
						each(func(c *Core) { c.SetKeys(now, []string{k}, nil) })
					} else {
						each(func(c *Core) { c.SetKeys(now, nil, []string{k}) })
					}
				case r == 3:
					p := int64(rng.IntN(2))
					each(func(c *Core) { c.SetPriority(now, p) })
				case r == 5:
					k := pool[rng.IntN(len(pool))]
					each(func(c *Core) { c.ResignKeys(now, []string{k}) }) // RemoveKey's first step; r == 2 re-adds
				case r == 4:
					v.keys = slices.Sorted(slices.Values(pool[:rng.IntN(3)]))
					v.claims = map[string]Claim{}
					for _, k := range v.keys {
						if rng.IntN(2) == 0 {
							v.claims[k] = Claim{Term: 3, Acting: true}
						}
					}
					send(i, false) // new keys: a whole state, as a sender does
				case r < 8:
					send(i, false)
				default:
					send(i, true)
				}
				each(func(c *Core) { c.Alarm(now) })
				samePartialWhole(t, step, cores)
			}
			mastered := 0
			snap := cores[0].Snap()
			for i := range snap.Len() {
				if snap.At(i).Master {
					mastered++
				}
			}
			t.Logf("%d keys mastered at the end", mastered)
		})
	}
}

// samePartialWhole fails the test unless the core that elects partially
// (cores[0]) and the one that elects whole (cores[1]) publish the same
// snapshot, claims and version after step.
func samePartialWhole(t *testing.T, step int, cores [2]*Core) {
	t.Helper()
	a, b := cores[0].Snap(), cores[1].Snap()
	if a.Running != b.Running || a.Ready != b.Ready || a.Master != b.Master || a.MasterUID != b.MasterUID || a.Term != b.Term ||
		a.Lease != b.Lease || !slices.Equal(a.KI.List, b.KI.List) || !slices.Equal(a.states(), b.states()) {
		for j := range a.states() {
			if j < len(b.states()) && a.states()[j] != b.states()[j] {
				t.Errorf("key %s: partial %+v, whole %+v", a.KI.List[j], a.states()[j], b.states()[j])
			}
		}
		t.Fatalf("step %d: the snapshots differ (partial %v/%v %q, whole %v/%v %q)", step, a.Running, a.Ready, a.MasterUID, b.Running, b.Ready, b.MasterUID)
	}
	if !slices.Equal(cores[0].slots, cores[1].slots) || cores[0].version != cores[1].version {
		t.Fatalf("step %d: the claims differ: version %d and %d", step, cores[0].version, cores[1].version)
	}
}

// states returns a snapshot's key states, by position in KI.
func (s *Snapshot) states() []KeyState {
	out := make([]KeyState, s.Len())
	for j := range out {
		out[j] = *s.At(j)
	}
	return out
}
