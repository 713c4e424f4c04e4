package msc

import (
	"fmt"
	"testing"
	"time"
)

// TestDialTurnsBounded: a node sets up at most maxDialing connections at
// a time, but dials to peers that never answer (their listeners accept
// nothing: each handshake waits WaitTimeout) hold back a peer that does
// for one WaitTimeout at most, not for WaitTimeouts of others' turns.
func TestDialTurnsBounded(t *testing.T) {
	const interval, wait = 50 * time.Millisecond, time.Second
	o0, o1 := testOptions(0), testOptions(1)
	o0.Interval, o0.WaitTimeout = interval, wait
	o1.Interval, o1.WaitTimeout = interval, wait
	o0.Listener, o1.Listener = listen(t), listen(t)
	n0, err := New(o0)
	if err != nil {
		t.Fatal(err)
	}
	n1, err := New(o1) // it dials nobody: n0 must dial it
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 * maxDialing {
		ln := listen(t) // never accepts: connects, then silence
		defer ln.Close()
		if err := n0.AddServer(fmt.Sprint("dead", i), ServerConfig{Port: port(ln)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*Msc{n1, n0} {
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		defer m.Stop()
	}
	// Every turn is taken by a dead peer's dial by now.
	waitFor(t, "the dead peers dialed", func() bool { return n0.Status().Dials >= maxDialing })
	t0 := time.Now()
	if err := n0.AddServer("live", ServerConfig{Port: port(o1.Listener)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node1 live", func() bool {
		for _, p := range n0.Status().Peers {
			if p.UID == "node1" && p.Live {
				return true
			}
		}
		return false
	})
	d := time.Since(t0)
	t.Logf("node1 live after %v", d)
	if d > wait+wait/4 {
		t.Fatalf("node1 live after %v: its dial waited for the dead peers' turns (WaitTimeout %v)", d, wait)
	}
}
