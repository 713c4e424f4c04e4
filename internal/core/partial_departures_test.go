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
			now := 1000 * ms
			cores := newMeshPair(cfg, own, now)
			each := cores.each
			np := 3 + rng.IntN(9)
			ps := make([]*meshPeer, np)
			for i := range ps {
				ps[i] = newMeshPeer(i, selfAt+int64(i-np/2)*ms)
				lo := rng.IntN(len(pool) / 3)
				ps[i].keys = slices.Sorted(slices.Values(pool[lo : lo+len(pool)/3+rng.IntN(len(pool)-lo-len(pool)/3)]))
			}
			term := uint64(1)
			nextConn := ConnID(1)
			partial, leftPartial := 0, 0
			send := func(p *meshPeer, full bool) {
				b := p.msg(now, full)
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
						cores.up(now, p, &nextConn)
						send(p, true)
					case r <= 1:
						cores.down(now, p, rng.IntN(2) == 0)
					case r == 2:
						each(func(c *Core) { c.Tick(now) })
					case r == 3:
						cores.flipKey(now, pool[rng.IntN(len(pool))], rng.IntN(2) == 0)
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
						p.moveClaims(rng, 1+rng.IntN(8), 2, &term)
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
				cores.alarm(t, step, now, &partial, &leftPartial)
			}
			left += leftPartial
			t.Logf("%d peers, observer %v, Balance %v: %d elections partial, %d after a peer left", np, cfg.Observer, cfg.Balance, partial, leftPartial)
		})
	}
	if left < *partialSeeds {
		t.Fatalf("%d partial elections after a peer left in %d schedules: they do not test onlyLeft", left, *partialSeeds)
	}
}
