package core

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPartialElectionsMesh drives two nodes of a full mesh without Quorum
// or Sticky through the same schedule: five peers that connect, close
// their connections or fall silent, change their keys, their priorities
// and their masterships (claims, acting or not, with terms that grow),
// and this node changing its keys and its priority, with Balance or not.
// One elects partially (the default), the other always whole
// (SetPartial(false)). After every step their snapshots, their claims and
// their versions must be the same.
func TestPartialElectionsMesh(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 3))
			pool := make([]string, 90)
			for i := range pool {
				pool[i] = fmt.Sprintf("k%02d", i)
			}
			cfg := Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait, Balance: seed%2 == 0}
			own := pool[:60+rng.IntN(30)]
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
				uid    string
				start  int64
				prio   int64
				up     bool
				conn   ConnID
				ver    uint64
				keys   []string
				claims map[string]Claim
			}
			ps := make([]*peer, 5)
			for i := range ps {
				// Started before or after self: some come first in order.
				ps[i] = &peer{uid: fmt.Sprintf("p%d", i), start: selfAt + int64(i-2)*ms, claims: map[string]Claim{}}
				ps[i].keys = slices.Sorted(slices.Values(pool[rng.IntN(20) : 40+rng.IntN(50)]))
			}
			term := uint64(1)
			nextConn := ConnID(1)
			partial, leftPartial := 0, 0
			send := func(p *peer, full bool) {
				if full {
					p.ver++
				}
				b := &Msg{UID: p.uid, Start: p.start, Inc: 1, Prio: p.prio, Sent: now, Version: p.ver, Full: full,
					Keys: p.keys, Claims: p.claims}
				each(func(c *Core) {
					m := *b
					m.Echo = c.Sent()
					c.Recv(now, now, p.conn, &m)
				})
			}
			for step := range 500 {
				now += ms * int64(1+rng.IntN(60))
				p := ps[rng.IntN(len(ps))]
				switch r := rng.IntN(24); {
				case !p.up:
					if rng.IntN(3) > 0 {
						break // it stays away a while
					}
					p.up, p.conn = true, nextConn
					nextConn++
					each(func(c *Core) { c.Up(now, p.conn, "", uint64(p.conn)) })
					send(p, true)
				case r == 0:
					p.up = false
					silent := rng.IntN(2) == 0
					each(func(c *Core) { c.Down(now, p.conn, silent) })
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
					pr := int64(rng.IntN(2))
					each(func(c *Core) { c.SetPriority(now, pr) })
				case r == 4:
					k := pool[rng.IntN(len(pool))]
					each(func(c *Core) { c.ResignKeys(now, []string{k}) })
				case r == 5:
					// New keys: some added, some dropped (and their claims).
					p.keys = slices.Sorted(slices.Values(pool[rng.IntN(30) : 40+rng.IntN(50)]))
					for k := range p.claims {
						if _, ok := slices.BinarySearch(p.keys, k); !ok {
							delete(p.claims, k)
						}
					}
					send(p, true)
				case r == 6:
					p.prio = int64(rng.IntN(2))
					send(p, true)
				case r < 14:
					// Masterships move: a few of its keys claimed, acting or
					// not, or given up.
					for range 1 + rng.IntN(5) {
						k := p.keys[rng.IntN(len(p.keys))]
						switch rng.IntN(3) {
						case 0:
							delete(p.claims, k)
						case 1:
							term++
							p.claims[k] = Claim{Term: term, Acting: true}
						default:
							term++
							p.claims[k] = Claim{Term: term}
						}
					}
					send(p, true)
				case r < 18:
					send(p, false) // a steady frame: nothing new
				default:
					// Time passes: silent peers count dead.
				}
				live := len(cores[0].order) // as of the last election (LiveCount would elect)
				each(func(c *Core) { c.Alarm(now) })
				if n := cores[0].part.eval.count(); n > 0 && n < len(cores[0].slots) {
					partial++
					if len(cores[0].order) < live {
						leftPartial++ // a peer gone, the other keys kept (onlyLeft)
					}
				}
				samePartialWhole(t, step, cores)
			}
			mastered := 0
			snap := cores[0].Snap()
			for i := range snap.Len() {
				if snap.At(i).Master {
					mastered++
				}
			}
			if partial < 100 {
				t.Fatalf("%d of 500 elections partial: the schedule does not test them", partial)
			}
			if leftPartial == 0 {
				t.Fatalf("no partial election after a peer left: the schedule does not test onlyLeft")
			}
			t.Logf("%d keys mastered at the end; %d elections partial, %d of them after a peer left", mastered, partial, leftPartial)
		})
	}
}

// count returns how many bits of b are set.
func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}
