package msc

import (
	"fmt"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// BenchmarkPeerDown: one node of a full mesh of 40 holding 1,000 keys with
// Balance (39 peers, each master of the keys Balance gives it) sees a
// peer's only connection close, as when that peer crashes: the election
// that follows and the heartbeat it publishes. Its cost, on each of the 39
// survivors, is what a crash failover waits for (BenchmarkScaleKeys/40x1000
// failover-ms).
func BenchmarkPeerDown(b *testing.B) {
	keys := testKeys(1000)
	const peers = 39
	start := func(i int) int64 { return base.Add(time.Duration(i+1) * time.Second).UnixNano() }
	c, now := newCoreBench(b, peers, keys, true, start, base.Add(time.Hour))
	// Each peer claims, acting, the keys the rules give it.
	claims := make([]map[string]core.Claim, peers)
	for i := range claims {
		claims[i] = map[string]core.Claim{}
	}
	s := c.Snap()
	for j := range s.Len() {
		var i int
		if _, err := fmt.Sscanf(s.At(j).UID, "peer%d", &i); err == nil {
			claims[i][s.KI.List[j]] = core.Claim{Term: 1, Acting: true}
		}
	}
	claims[0][""] = core.Claim{Term: 1, Acting: true}
	version := uint64(2)
	full := func(i int) *core.Msg {
		return &core.Msg{UID: fmt.Sprintf("peer%d", i), Start: start(i), Inc: uint64(i + 2), Sent: now, Version: version, Full: true, Keys: keys, Claims: claims[i]}
	}
	for i := range peers {
		c.Recv(now, now, core.ConnID(i+1), full(i))
	}
	c.Tick(now)
	c.Out().Reset()
	if s := c.Snap(); s.MasterUID != "peer0" {
		b.Fatalf("master %q, want peer0", s.MasterUID)
	}
	id := core.ConnID(peers + 1)
	b.ReportAllocs()
	for b.Loop() {
		now += int64(time.Millisecond)
		c.Down(now, core.ConnID(1), false)
		o := c.Out()
		if o.Snap == nil || o.Snap.MasterUID != "peer1" {
			b.Fatalf("iteration %d after peer0 crash: ready %v master %q live %d", version, o.Snap != nil && o.Snap.Ready, c.Snap().MasterUID, c.LiveCount())
		}
		o.Reset()
		b.StopTimer()
		// peer0 back on a new connection (id 1 again: the conns map
		// keeps its size).
		id++
		c.Up(now, core.ConnID(1), "", uint64(id))
		version++
		c.Recv(now, now, core.ConnID(1), full(0))
		for i := 1; i < peers; i++ {
			c.Heard(core.ConnID(i+1), now) // their steady heartbeats
		}
		c.Tick(now) // sent now: no pause noticed
		c.Out().Reset()
		b.StartTimer()
	}
}
