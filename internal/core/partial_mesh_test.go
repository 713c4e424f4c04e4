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
			now := 1000 * ms
			cores := newMeshPair(cfg, own, now)
			each := cores.each
			ps := make([]*meshPeer, 5)
			for i := range ps {
				// Started before or after self: some come first in order.
				ps[i] = newMeshPeer(i, selfAt+int64(i-2)*ms)
				ps[i].keys = slices.Sorted(slices.Values(pool[rng.IntN(20) : 40+rng.IntN(50)]))
			}
			term := uint64(1)
			nextConn := ConnID(1)
			partial, leftPartial := 0, 0
			send := func(p *meshPeer, full bool) {
				b := p.msg(now, full)
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
					cores.up(now, p, &nextConn)
					send(p, true)
				case r == 0:
					cores.down(now, p, rng.IntN(2) == 0)
				case r == 1:
					each(func(c *Core) { c.Tick(now) })
				case r == 2:
					cores.flipKey(now, pool[rng.IntN(len(pool))], rng.IntN(2) == 0)
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
					p.moveClaims(rng, 1+rng.IntN(5), 1, &term)
					send(p, true)
				case r < 18:
					send(p, false) // a steady frame: nothing new
				default:
					// Time passes: silent peers count dead.
				}
				cores.alarm(t, step, now, &partial, &leftPartial)
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

// meshPair is a core that elects partially and one that always elects
// whole (SetPartial(false)), which the schedules of
// TestPartialElectionsMesh and TestPartialElectionsAfterDepartures drive
// alike and compare (samePartialWhole).
type meshPair [2]*Core

// newMeshPair returns the pair, started at now.
func newMeshPair(cfg Config, own []string, now int64) meshPair {
	cores := meshPair{New(cfg, own, nil), New(cfg, own, nil)}
	cores[1].SetPartial(false)
	cores.each(func(c *Core) { c.Start(now, nil) })
	return cores
}

// each calls f on both cores.
func (cores meshPair) each(f func(c *Core)) {
	for _, c := range cores {
		f(c)
	}
}

// up connects p on a new connection, numbered by *next.
func (cores meshPair) up(now int64, p *meshPeer, next *ConnID) {
	p.up, p.conn = true, *next
	*next++
	cores.each(func(c *Core) { c.Up(now, p.conn, "", uint64(p.conn)) })
}

// down ends p's connection (silent: closed as silent, to be redialed).
func (cores meshPair) down(now int64, p *meshPeer, silent bool) {
	p.up = false
	cores.each(func(c *Core) { c.Down(now, p.conn, silent) })
}

// flipKey adds key k to both cores (add) or removes it.
func (cores meshPair) flipKey(now int64, k string, add bool) {
	if add {
		cores.each(func(c *Core) { c.SetKeys(now, []string{k}, nil) })
	} else {
		cores.each(func(c *Core) { c.SetKeys(now, nil, []string{k}) })
	}
}

// alarm elects both at now and compares them: snapshots, claims and
// versions (samePartialWhole), wake times, waiting, yields and rankAt. It
// counts the partial core's election in *partial if it was partial, and
// in *left too if it was one after live peers left (onlyLeft).
func (cores meshPair) alarm(t *testing.T, step int, now int64, partial, left *int) {
	t.Helper()
	live := len(cores[0].order) // as of the last election (LiveCount would elect)
	cores.each(func(c *Core) { c.Alarm(now) })
	if n := cores[0].part.eval.count(); n > 0 && n < len(cores[0].slots) {
		*partial++
		if len(cores[0].order) < live {
			*left++
		}
	}
	samePartialWhole(t, step, cores)
	a, b := cores[0], cores[1]
	if a.Wake() != b.Wake() || a.waiting != b.waiting || a.yields != b.yields || a.rankAt != b.rankAt {
		t.Fatalf("step %d: wake %d/%d waiting %v/%v yields %d/%d rankAt %d/%d", step, a.Wake(), b.Wake(), a.waiting, b.waiting, a.yields, b.yields, a.rankAt, b.rankAt)
	}
}

// meshPeer is a peer of those schedules.
type meshPeer struct {
	uid      string
	start    int64
	prio     int64
	inc      uint64
	up       bool
	conn     ConnID
	ver      uint64
	keys     []string
	claims   map[string]Claim
	observer bool
}

func newMeshPeer(i int, start int64) *meshPeer {
	return &meshPeer{uid: fmt.Sprintf("p%d", i), start: start, inc: 1, claims: map[string]Claim{}}
}

// msg returns p's heartbeat at now: a new state if full.
func (p *meshPeer) msg(now int64, full bool) *Msg {
	if full {
		p.ver++
	}
	return &Msg{UID: p.uid, Start: p.start, Inc: p.inc, Prio: p.prio, Sent: now, Version: p.ver, Full: full,
		Keys: p.keys, Claims: p.claims, Observer: p.observer}
}

// moveClaims changes n of p's claims, of keys drawn at random: each given
// up, made acting, or made not acting, in the ratio 1 : acting : 1, with
// the next term (*term).
func (p *meshPeer) moveClaims(rng *rand.Rand, n, acting int, term *uint64) {
	for range n {
		k := p.keys[rng.IntN(len(p.keys))]
		switch r := rng.IntN(2 + acting); {
		case r == 0:
			delete(p.claims, k)
		case r <= acting:
			*term++
			p.claims[k] = Claim{Term: *term, Acting: true}
		default:
			*term++
			p.claims[k] = Claim{Term: *term}
		}
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
