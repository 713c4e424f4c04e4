package msc_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/msctest"
)

// setters are the methods that change a node, each called with valid
// arguments: on a stopped node every one returns ErrStopped.
var setters = []struct {
	name string
	call func(m *msc.Msc) error
}{
	{"AddKey", func(m *msc.Msc) error { return m.AddKey("k") }},
	{"AddKeys", func(m *msc.Msc) error { return m.AddKeys("k", "l") }},
	{"AddKeys()", func(m *msc.Msc) error { return m.AddKeys() }},
	{"RemoveKey", func(m *msc.Msc) error { return m.RemoveKey("k") }},
	{"RemoveKeys", func(m *msc.Msc) error { return m.RemoveKeys("k", "l") }},
	{"Update", func(m *msc.Msc) error { return m.Update() }},
	{"SetPriority", func(m *msc.Msc) error { return m.SetPriority(1) }},
	{"SetMeta", func(m *msc.Msc) error { return m.SetMeta(map[string]string{"a": "b"}) }},
	{"SetKey", func(m *msc.Msc) error { return m.SetKey("new", "old") }},
	{"AddServer", func(m *msc.Msc) error { return m.AddServer("s", msc.ServerConfig{Port: 1}) }},
	{"RemoveServer", func(m *msc.Msc) error { return m.RemoveServer("s") }},
	{"Start", func(m *msc.Msc) error { return m.Start() }},
	{"Stop", func(m *msc.Msc) error { return m.Stop() }},
}

// lone returns a node with no servers, on a free loopback port, started
// or not; the test stops it.
func lone(t *testing.T, start bool) *msc.Msc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := msc.New(msc.Options{Key: "k", Listener: ln, Interval: 10 * time.Millisecond, WaitTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Stop(); ln.Close() })
	if start {
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// TestSettersStopped: after Stop, whether the node was started or not,
// every method that changes it returns ErrStopped, Stop included.
func TestSettersStopped(t *testing.T) {
	for _, started := range []bool{false, true} {
		m := lone(t, started)
		if err := m.Stop(); err != nil {
			t.Fatalf("started %v: first Stop: %v", started, err)
		}
		for _, s := range setters {
			if err := s.call(m); !errors.Is(err, msc.ErrStopped) {
				t.Errorf("started %v: %s after Stop: %v, want ErrStopped", started, s.name, err)
			}
		}
	}
}

// TestSettersRunning: on a running node, every method that changes it
// returns nil for valid arguments (Start: ErrStarted, the node runs).
func TestSettersRunning(t *testing.T) {
	m := lone(t, true)
	for _, s := range setters {
		if s.name == "Stop" {
			continue
		}
		err := s.call(m)
		if s.name == "Start" {
			if !errors.Is(err, msc.ErrStarted) {
				t.Errorf("Start on a running node: %v, want ErrStarted", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
	}
}

// TestSettersBadInput: each setter's error for what it refuses, by its
// sentinel, before Start and on a running node.
func TestSettersBadInput(t *testing.T) {
	long := strings.Repeat("x", msc.MaxKeyLen+1)
	bigMeta := map[string]string{"x": strings.Repeat("y", msc.MaxMetaSize)}
	for _, tc := range []struct {
		name string
		call func(m *msc.Msc) error
		want error
	}{
		{"AddKey empty", func(m *msc.Msc) error { return m.AddKey("") }, msc.ErrInvalidKey},
		{"AddKey too long", func(m *msc.Msc) error { return m.AddKey(long) }, msc.ErrInvalidKey},
		{"AddKeys one empty", func(m *msc.Msc) error { return m.AddKeys("a", "") }, msc.ErrInvalidKey},
		{"RemoveKey empty", func(m *msc.Msc) error { return m.RemoveKey("") }, msc.ErrInvalidKey},
		{"RemoveKeys one too long", func(m *msc.Msc) error { return m.RemoveKeys("a", long) }, msc.ErrInvalidKey},
		{"Update key not held", func(m *msc.Msc) error { return m.Update("nope") }, msc.ErrUnknownKey},
		{"SetMeta too large", func(m *msc.Msc) error { return m.SetMeta(bigMeta) }, msc.ErrInvalidOption},
		{"SetKey empty", func(m *msc.Msc) error { return m.SetKey("") }, msc.ErrEmptyKey},
		{"AddServer bad port", func(m *msc.Msc) error { return m.AddServer("s", msc.ServerConfig{Port: -1}) }, msc.ErrInvalidOption},
		{"AddServer twice", func(m *msc.Msc) error {
			m.AddServer("dup", msc.ServerConfig{Port: 1})
			return m.AddServer("dup", msc.ServerConfig{Port: 1})
		}, msc.ErrServerExists},
		{"RemoveServer unknown", func(m *msc.Msc) error { return m.RemoveServer("nope") }, msc.ErrUnknownServer},
	} {
		for _, started := range []bool{false, true} {
			m := lone(t, started)
			if err := tc.call(m); !errors.Is(err, tc.want) {
				t.Errorf("%s (started %v): %v, want %v", tc.name, started, err, tc.want)
			}
			if got := m.Keys(); len(got) != 0 {
				t.Errorf("%s (started %v): keys %q after a refused call", tc.name, started, got)
			}
		}
	}
}

// TestRunTimeout: RemoveKey and Stop wait WaitTimeout for a RunAsMaster
// function that does not return, do their work all the same, and return
// ErrRunTimeout; with a function that returns, they return nil.
func TestRunTimeout(t *testing.T) {
	// A WaitTimeout long enough that the function that returns does so
	// within it on a loaded machine.
	c := msctest.NewCluster(t, 1, func(_ int, o *msc.Options) {
		o.Keys = []string{"k", "quick"}
		o.WaitTimeout = time.Second
	})
	c.WaitMaster(0)
	m := c.Node(0)
	release := make(chan struct{})
	defer close(release)
	hold := func(ctx context.Context, _ uint64) { <-release } // ignores ctx
	quick := func(ctx context.Context, _ uint64) { <-ctx.Done() }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan string, 3)
	go m.RunAsMasterByKey(ctx, "k", func(ctx context.Context, term uint64) { started <- "k"; hold(ctx, term) })
	go m.RunAsMasterByKey(ctx, "quick", func(ctx context.Context, term uint64) { started <- "quick"; quick(ctx, term) })
	go m.RunAsMaster(ctx, func(ctx context.Context, term uint64) { started <- ""; hold(ctx, term) })
	for range 3 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("the RunAsMaster functions did not start")
		}
	}
	if err := m.RemoveKey("quick"); err != nil {
		t.Fatalf("RemoveKey of a key whose function returns: %v", err)
	}
	if err := m.RemoveKey("k"); !errors.Is(err, msc.ErrRunTimeout) {
		t.Fatalf("RemoveKey of a key whose function does not return: %v, want ErrRunTimeout", err)
	}
	if keys := m.Keys(); len(keys) != 0 {
		t.Fatalf("keys %q after RemoveKey", keys)
	}
	if err := m.Stop(); !errors.Is(err, msc.ErrRunTimeout) {
		t.Fatalf("Stop with a function that does not return: %v, want ErrRunTimeout", err)
	}
	if m.IsMaster() {
		t.Fatal("master after Stop")
	}
}
