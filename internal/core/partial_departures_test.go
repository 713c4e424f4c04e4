package core

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// partialSeeds is how many schedules TestPartialElectionsAfterDepartures
// runs (a reviewer ran 3,000; 30 by default keep it under 5 s with -race).
var partialSeeds = flag.Int("partial.seeds", 30, "schedules of TestPartialElectionsAfterDepartures")

// TestPartialElectionsAfterDepartures: schedules made to break onlyLeft,
// a partial election after peers left, against a core that always elects
// whole: 3 to 11 peers, observers (this node or peers), several steps
// with no election between (a peer's new claims or keys, then its
// crash), several peers silent at once, peers live by grace, restarts
// (a new incarnation), and queries that run balance on the partial core
// only. After every step the snapshots, claims, versions, wake times,
// waiting, yields and rankAt must be the same.
func TestPartialElectionsAfterDepartures(t *testing.T) {
	left := 0
	for seed := range uint64(*partialSeeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 77))
			pool := make([]string, 40+rng.IntN(100))
			for i := range pool {
				pool[i] = fmt.Sprintf("k%03d", i)
			}
			cfg := Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait,
				Balance: seed%3 != 0, Observer: seed%4 == 1}
			own := pool[:len(pool)/2+rng.IntN(len(pool)/2)]
			cores := [2]*Core{New(cfg, own, nil), New(cfg, own, nil)}
			cores[1].SetPartial(false)
			now := 1000 * ms
			each := func(f func(c *Core)) {
				for _, c := range cores {
					f(c)
				}
			}
			each(func(c *Core) { c.Start(now, nil) })
			type peer struct {
				uid      string
				start    int64
				prio     int64
				up       bool
				conn     ConnID
				ver      uint64
				keys     []string
				claims   map[string]Claim
				observer bool
				inc      uint64
			}
			np := 3 + rng.IntN(9)
			ps := make([]*peer, np)
			for i := range ps {
				ps[i] = &peer{uid: fmt.Sprintf("p%d", i), start: selfAt + int64(i-np/2)*ms, claims: map[string]Claim{}, inc: 1}
				lo := rng.IntN(len(pool) / 3)
				ps[i].keys = slices.Sorted(slices.Values(pool[lo : lo+len(pool)/3+rng.IntN(len(pool)-lo-len(pool)/3)]))
			}
			term := uint64(1)
			nextConn := ConnID(1)
			partial, leftPartial := 0, 0
			send := func(p *peer, full bool) {
				if full {
					p.ver++
				}
				b := &Msg{UID: p.uid, Start: p.start, Inc: p.inc, Prio: p.prio, Sent: now, Version: p.ver, Full: full,
					Keys: p.keys, Claims: p.claims, Observer: p.observer}
				noEcho := rng.IntN(4) == 0
				each(func(c *Core) {
					m := *b
					m.Echo = c.sent // no flush: several steps may go into one election
					if noEcho {
						m.Echo = 0
					}
					c.Recv(now, now, p.conn, &m)
				})
			}
			for step := range 600 {
				now += ms * int64(1+rng.IntN(80))
				if rng.IntN(15) == 0 {
					now += int64(ruleWait) // several fall silent at once
				}
				for range 1 + rng.IntN(4) {
					p := ps[rng.IntN(len(ps))]
					switch r := rng.IntN(26); {
					case !p.up:
						if rng.IntN(3) > 0 {
							break
						}
						if rng.IntN(6) == 0 {
							p.inc++ // a restart: a new process
							p.ver = 0
							p.claims = map[string]Claim{}
						}
						p.up, p.conn = true, nextConn
						nextConn++
						each(func(c *Core) { c.Up(now, p.conn, "", uint64(p.conn)) })
						send(p, true)
					case r <= 1:
						p.up = false
						silent := rng.IntN(2) == 0
						each(func(c *Core) { c.Down(now, p.conn, silent) })
					case r == 2:
						each(func(c *Core) { c.Tick(now) })
					case r == 3:
						k := pool[rng.IntN(len(pool))]
						if rng.IntN(2) == 0 {
							each(func(c *Core) { c.SetKeys(now, []string{k}, nil) })
						} else {
							each(func(c *Core) { c.SetKeys(now, nil, []string{k}) })
						}
					case r == 4:
						if rng.IntN(4) == 0 {
							pr := int64(rng.IntN(2))
							each(func(c *Core) { c.SetPriority(now, pr) })
						}
					case r == 5:
						lo := rng.IntN(len(pool) / 3)
						p.keys = slices.Sorted(slices.Values(pool[lo : lo+len(pool)/3+rng.IntN(len(pool)-lo-len(pool)/3)]))
						for k := range p.claims {
							if _, ok := slices.BinarySearch(p.keys, k); !ok {
								delete(p.claims, k)
							}
						}
						send(p, true)
					case r == 6:
						if rng.IntN(3) == 0 {
							p.prio = int64(rng.IntN(2))
							send(p, true)
						}
					case r == 7:
						if rng.IntN(4) == 0 {
							p.observer = !p.observer
							send(p, true)
						}
					case r < 16:
						for range 1 + rng.IntN(8) {
							k := p.keys[rng.IntN(len(p.keys))]
							switch rng.IntN(4) {
							case 0:
								delete(p.claims, k)
							case 1, 2:
								term++
								p.claims[k] = Claim{Term: term, Acting: true}
							default:
								term++
								p.claims[k] = Claim{Term: term}
							}
						}
						send(p, true)
					case r < 21:
						send(p, false)
					case r == 21:
						// A query on the partial core only, no flush: balance
						// may run there between elections.
						c := cores[0]
						if !c.electDue && len(c.slots) > 1 {
							c.rightful(1 + rng.IntN(len(c.slots)-1))
						}
					default:
					}
				}
				live := len(cores[0].order)
				each(func(c *Core) { c.Alarm(now) })
				if n := cores[0].part.eval.count(); n > 0 && n < len(cores[0].slots) {
					partial++
					if len(cores[0].order) < live {
						leftPartial++
					}
				}
				samePartialWhole(t, step, cores)
				a, b := cores[0], cores[1]
				if a.Wake() != b.Wake() || a.waiting != b.waiting || a.yields != b.yields || a.rankAt != b.rankAt {
					t.Fatalf("step %d: wake %d/%d waiting %v/%v yields %d/%d rankAt %d/%d", step, a.Wake(), b.Wake(), a.waiting, b.waiting, a.yields, b.yields, a.rankAt, b.rankAt)
				}
				for i := range a.slots {
					if a.slots[i] != b.slots[i] {
						t.Fatalf("step %d: slot %d differs", step, i)
					}
				}
			}
			left += leftPartial
			t.Logf("%d peers, observer %v, Balance %v: %d elections partial, %d after a peer left", np, cfg.Observer, cfg.Balance, partial, leftPartial)
		})
	}
	if left < *partialSeeds {
		t.Fatalf("%d partial elections after a peer left in %d schedules: they do not test onlyLeft", left, *partialSeeds)
	}
}
