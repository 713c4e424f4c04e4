package core

import (
	"fmt"
	"testing"
)

// BenchmarkVoterPeers: what a voter of 1,000 members holding 1,000 keys
// each spends on its elector to list its peers (Peers, which Status
// copies: every member's keys) and to count them (PeerCounts, which the
// metrics handler reads instead).
func BenchmarkVoterPeers(b *testing.B) {
	const members, keys = 1000, 1000
	ks := make([]string, keys)
	for i := range ks {
		ks[i] = fmt.Sprintf("job-%04d", i)
	}
	c := New(Config{UID: "v", Start: 1, Inc: 1, Interval: ruleInterval, Wait: ruleWait, Voters: map[string]bool{"v": true}}, nil, nil)
	now := int64(1000 * ms)
	c.Start(now, nil)
	for i := range members {
		id := ConnID(i + 1)
		c.Up(now, id, "", uint64(id))
		c.Recv(now, now, id, &Msg{UID: fmt.Sprintf("m%04d", i), Start: 2, Inc: 1, Sent: now, Version: 1, Full: true, Keys: ks})
	}
	c.flush()
	if live, _ := c.PeerCounts(now); live != members {
		b.Fatalf("%d live members, want %d", live, members)
	}
	b.Run("Peers", func(b *testing.B) {
		for b.Loop() {
			if len(c.Peers(now)) != members {
				b.Fatal("peers missing")
			}
		}
	})
	b.Run("PeerCounts", func(b *testing.B) {
		for b.Loop() {
			if live, _ := c.PeerCounts(now); live != members {
				b.Fatal("peers missing")
			}
		}
	})
}
