package core

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPicksMatchTheRules drives a core with Balance through peers that
// come, go and change their keys, and checks after each election that
// the picks (kept from one election to the next) name, for every key,
// the holder a scan of every live peer names: the highest weight, equal
// weights to the smaller UID; and the first master in order.
func TestPicksMatchTheRules(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			pool := make([]string, 40)
			for i := range pool {
				pool[i] = fmt.Sprintf("k%02d", i)
			}
			subset := func() []string {
				var ks []string
				for _, k := range pool {
					if rng.IntN(3) > 0 {
						ks = append(ks, k)
					}
				}
				return ks
			}
			cfg := Config{UID: "self", Start: 1, Inc: 1, Interval: ruleInterval, Wait: ruleWait, Balance: true}
			now := 1000 * ms
			c := New(cfg, subset(), nil)
			c.Start(now, nil)
			const peers = 12
			up := make([]bool, peers)
			ver := make([]uint64, peers)
			keys := make([][]string, peers)
			send := func(i int) {
				ver[i]++
				claims := map[string]Claim{}
				if len(keys[i]) > 0 && rng.IntN(2) == 0 {
					claims[keys[i][rng.IntN(len(keys[i]))]] = Claim{Term: 1, Acting: true}
				}
				c.Recv(now, now, ConnID(i+1), &Msg{UID: fmt.Sprintf("p%02d", i), Start: int64(i + 2), Inc: 1, Sent: now, Version: ver[i], Full: true, Keys: keys[i], Claims: claims})
			}
			for step := range 300 {
				now += ms
				i := rng.IntN(peers)
				switch {
				case !up[i]:
					up[i], keys[i] = true, subset()
					c.Up(now, ConnID(i+1), "", uint64(i))
					send(i)
				case rng.IntN(3) == 0:
					up[i] = false
					c.Down(now, ConnID(i+1), false)
				case rng.IntN(2) == 0:
					keys[i] = subset()
					send(i)
				default:
					if rng.IntN(4) == 0 {
						c.SetKeys(now, nil, []string{pool[rng.IntN(len(pool))]})
					}
					send(i)
				}
				c.Elect(now)
				for s := 1; s < len(c.slots); s++ {
					var want *cpeer
					var wantW uint64
					var act *cpeer
					for _, p := range c.order {
						h, a := c.holds(p, s)
						if !h {
							continue
						}
						if a && act == nil {
							act = p
						}
						if w := Weight(c.ki.hash[s-1], p.hash); want == nil || w > wantW || w == wantW && p.uid < want.uid {
							want, wantW = p, w
						}
					}
					if got := c.firstPeer(s); got != want {
						t.Fatalf("step %d, key %s: picks name %v, the rules %v", step, c.slotKey(s), uidOf(got), uidOf(want))
					}
					if got := c.actingPeer(s); got != act {
						t.Fatalf("step %d, key %s: first master %v, the rules %v", step, c.slotKey(s), uidOf(got), uidOf(act))
					}
				}
			}
			if !slices.ContainsFunc(up, func(b bool) bool { return b }) {
				t.Fatal("no peer up at the end: the schedule tests nothing")
			}
		})
	}
}

func uidOf(p *cpeer) string {
	if p == nil {
		return "none"
	}
	return p.uid
}
