package msc

import (
	"fmt"
	"hash/fnv"
	"maps"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Balance figures that docs/election.md quotes ("Balance: spread keys
// over the nodes"), from the test suite's cluster (5 nodes
// node0-node4, the 1,000 keys of manyKeys; node2 leaves; "joiner" joins):
// the busiest node masters 1.12× the average and the least busy 0.81×;
// 224 keys move on the leave; the joiner takes 174 keys.
//
// TestBalanceREADMEFigures computes the owners with the formula the page
// gives, written here from it, checks that a live cluster agrees with it
// on every key, before and after the leave and the join, and that the
// figures are those the page quotes. (The figures were in the README,
// whence the test's name.)

// balanceFiguresDoc is the page that quotes the figures.
const balanceFiguresDoc = "docs/election.md"

// readmeWeight is the page's rendezvous weight of node uid for key:
// mix64(fnv1a64(K) XOR mix64(fnv1a64(UID))).
func readmeWeight(key, uid string) uint64 {
	fnv1a := func(s string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(s))
		return h.Sum64()
	}
	mix := func(x uint64) uint64 { // the SplitMix64 finalizer
		x ^= x >> 30
		x *= 0xbf58476d1ce4e5b9
		x ^= x >> 27
		x *= 0x94d049bb133111eb
		x ^= x >> 31
		return x
	}
	return mix(fnv1a(key) ^ mix(fnv1a(uid)))
}

// readmeOwners returns the master of each key among uids: the highest
// weight, ties to the smaller uid.
func readmeOwners(keys, uids []string) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		best, bestW := "", uint64(0)
		for _, u := range uids {
			if w := readmeWeight(k, u); best == "" || w > bestW || w == bestW && u < best {
				best, bestW = u, w
			}
		}
		out[k] = best
	}
	return out
}

// readmeBalanceFigures reads the figures balanceFiguresDoc quotes.
func readmeBalanceFigures(t *testing.T) (keys, nodes int, busiest, least string, left, joined int) {
	t.Helper()
	b, err := os.ReadFile(balanceFiguresDoc)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(b)), " ")
	re := regexp.MustCompile(`With ([0-9,]+) keys on (\d+) nodes \(the test suite\), the busiest node masters ([0-9.]+)× ` +
		`the average and the least busy ([0-9.]+)×; when a node leaves, exactly its (\d+) keys move; ` +
		`when a new node joins, it takes (\d+) keys and no other key moves`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("%s: no sentence matching %s", balanceFiguresDoc, re)
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(strings.ReplaceAll(s, ",", ""))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return atoi(m[1]), atoi(m[2]), m[3], m[4], atoi(m[5]), atoi(m[6])
}

func TestBalanceREADMEFigures(t *testing.T) {
	nKeys, nNodes, busiest, least, left, joined := readmeBalanceFigures(t)
	if nKeys != 1000 || nNodes != 5 {
		t.Fatalf("%s speaks of %d keys on %d nodes; the suite has 1000 on 5", balanceFiguresDoc, nKeys, nNodes)
	}
	keys := manyKeys(nKeys)
	uids := []string{"node0", "node1", "node2", "node3", "node4"}
	after := []string{"node0", "node1", "node3", "node4"}
	joinedUIDs := append([]string{"joiner"}, after...)
	want := [3]map[string]string{readmeOwners(keys, uids), readmeOwners(keys, after), readmeOwners(keys, joinedUIDs)}

	// The figures, from the formula.
	count := map[string]int{}
	for _, u := range want[0] {
		count[u]++
	}
	hi, lo := 0, nKeys
	for _, u := range uids {
		hi, lo = max(hi, count[u]), min(lo, count[u])
	}
	avg := float64(nKeys) / float64(nNodes)
	moved, taken := 0, 0
	for _, k := range keys {
		if want[0][k] != want[1][k] {
			moved++
			if want[0][k] != "node2" {
				t.Errorf("formula: key %s moves from %s on node2's leave", k, want[0][k])
			}
		}
		if want[1][k] != want[2][k] {
			taken++
			if want[2][k] != "joiner" {
				t.Errorf("formula: key %s moves to %s on a join", k, want[2][k])
			}
		}
	}
	got := fmt.Sprintf("busiest %.2f× least %.2f× leave %d join %d", float64(hi)/avg, float64(lo)/avg, moved, taken)
	if quoted := fmt.Sprintf("busiest %s× least %s× leave %d join %d", busiest, least, left, joined); got != quoted {
		t.Fatalf("%s quotes %q; the formula gives %q", balanceFiguresDoc, quoted, got)
	}
	if moved != count["node2"] {
		t.Fatalf("%d keys moved on the leave of node2, which mastered %d", moved, count["node2"])
	}

	// A live cluster agrees with the formula on every key.
	c := newCluster(t, nNodes, func(i int, o *Options) {
		o.Keys = keys
		o.Balance = true
	}).start()
	exact := func(what string, want map[string]string) {
		t.Helper()
		deadline := time.Now().Add(settle)
		for {
			got, ok := owners(c, keys)
			if ok && maps.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				diff, example := 0, ""
				for _, k := range keys {
					if got[k] != want[k] {
						diff++
						example = fmt.Sprintf("%s mastered by %q, formula %q", k, got[k], want[k])
					}
				}
				t.Fatalf("%s: one agreed master per key: %v; %d keys differ (%s)", what, ok, diff, example)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	exact("the formula's owners of 5 nodes", want[0])
	c.nodes[2].Stop()
	exact("the formula's owners after node2 left", want[1])
	c.restart(2, func(o *Options) { o.UID = "joiner" })
	exact("the formula's owners after joiner joined", want[2])
}
