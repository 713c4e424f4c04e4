package msc

import (
	"errors"
	"testing"
	"time"
)

// overloadNode is a node (not started) with Interval and WaitTimeout as
// given, for the overload rules.
func overloadNode(t *testing.T, interval, wait time.Duration) *Msc {
	t.Helper()
	m, err := New(Options{Key: "overload", Interval: interval, WaitTimeout: wait})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A node counts as overloaded once a goroutine of it ran more than a
// quarter of Interval late, for 2*WaitTimeout; meanwhile it waits
// patienceFactor times longer for the network.
func TestOverloadWindow(t *testing.T) {
	m := overloadNode(t, 100*time.Millisecond, 300*time.Millisecond)
	now := mono()
	if d := m.patience(time.Second); d != time.Second {
		t.Fatalf("patience %v before running late, want 1s", d)
	}
	m.ranLate(now, 25*time.Millisecond)
	if m.overloaded(now) {
		t.Fatal("overloaded after running Interval/4 late")
	}
	m.ranLate(now, 26*time.Millisecond)
	if !m.overloaded(now) || !m.overloaded(now+int64(599*time.Millisecond)) {
		t.Fatal("not overloaded within 2*WaitTimeout of running late")
	}
	if m.overloaded(now + int64(600*time.Millisecond)) {
		t.Fatal("still overloaded 2*WaitTimeout after running late")
	}
	m.ranLate(mono(), time.Second)
	if d := m.patience(time.Second); d != patienceFactor*time.Second {
		t.Fatalf("patience %v overloaded, want %v", d, patienceFactor*time.Second)
	}
}

// silentAfterOn runs the read loop of a connection whose peer sends
// nothing, and returns how long it took to give the peer up, and why.
func silentAfterOn(t *testing.T, m *Msc) (time.Duration, error) {
	t.Helper()
	s := m.suite.Load()
	d, l := handshakePairOf(t, m, s)
	defer d.close()
	defer l.close()
	t0 := time.Now()
	err := l.readLoop()
	return time.Since(t0), err
}

// A connection silent for SilentAfter is given up (ErrPeerSilent); while
// its node is overloaded it is kept until the overload has passed, and
// patienceFactor*WaitTimeout at most.
func TestSilenceWaitsOutOverload(t *testing.T) {
	const iv, wait = 100 * time.Millisecond, 300 * time.Millisecond
	m := overloadNode(t, iv, wait)
	el, err := silentAfterOn(t, m)
	if !errors.Is(err, ErrPeerSilent) {
		t.Fatalf("a silent peer: %v, want ErrPeerSilent", err)
	}
	if el > patienceFactor*wait+wait { // (the node may find itself late)
		t.Fatalf("a silent peer given up after %v, want about SilentAfter (%v)", el, silentAfter(iv, wait))
	}
	m = overloadNode(t, iv, wait)
	m.ranLate(mono(), time.Second)
	el, err = silentAfterOn(t, m)
	if !errors.Is(err, ErrPeerSilent) {
		t.Fatalf("a silent peer, overloaded: %v, want ErrPeerSilent", err)
	}
	// Overloaded until 2*WaitTimeout after it ran late: not given up
	// before.
	if el < 2*wait {
		t.Fatalf("a silent peer given up after %v while overloaded, want %v at least", el, 2*wait)
	}
	if el > patienceFactor*wait+2*wait {
		t.Fatalf("a silent peer given up after %v while overloaded, want %v at most (and some slack)", el, patienceFactor*wait)
	}
}

// While the node is overloaded, a frame that has begun gets
// patienceFactor*WaitTimeout for the rest, however long the connection
// had been silent before: a large frame comes in pieces as the peer's
// flusher gets a CPU.
func TestFrameBegunWaitedOutOverloaded(t *testing.T) {
	const iv, wait = 100 * time.Millisecond, 600 * time.Millisecond
	m := overloadNode(t, iv, wait)
	m.ranLate(mono(), time.Second) // overloaded for 2*WaitTimeout from now
	s := m.suite.Load()
	d, l := handshakePairOf(t, m, s)
	defer d.close()
	p, err := encodeBeat(testBeat(0), false)
	if err != nil {
		t.Fatal(err)
	}
	payload := p[uidPrefixLen("node0"):]
	out := appendHeader(nil, frameHeartbeat, 0, 1, "node0", len(payload)+d.send.overhead())
	out = d.send.seal(out, out, payload, 1)
	done := make(chan error, 1)
	go func() { done <- l.readLoop() }()
	defer func() { l.close(); <-done }()
	// The first bytes within SilentAfter (350 ms), the rest after it.
	time.Sleep(silentAfter(iv, wait) - 100*time.Millisecond)
	if _, err := d.nc.Write(out[:5]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := d.nc.Write(out[5:]); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(settle)
	for {
		select {
		case ev := <-m.events:
			if ev.kind == evBeat && ev.beat.UID == "node0" {
				return
			}
		case err := <-done:
			done <- err
			t.Fatalf("read loop ended (%v) before the frame that had begun arrived", err)
		case <-deadline:
			t.Fatal("the frame never reached the elector")
		}
	}
}
