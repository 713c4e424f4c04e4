package msc

import (
	"errors"
	"testing"
)

func TestAddRemoveServerAtRuntime(t *testing.T) {
	a, b := testOptions(0), testOptions(1)
	a.Listener, b.Listener = listen(t), listen(t)
	na, _ := New(a)
	nb, _ := New(b)
	na.Start()
	nb.Start()
	defer na.Stop()
	defer nb.Stop()
	if !na.IsMaster() || !nb.IsMaster() {
		t.Fatal("two strangers should both be master")
	}
	if err := nb.AddServer("a", ServerConfig{Port: port(a.Listener)}); err != nil {
		t.Fatal(err)
	}
	if err := nb.AddServer("a", ServerConfig{Port: port(a.Listener)}); !errors.Is(err, ErrServerExists) {
		t.Fatalf("AddServer twice: %v", err)
	}
	// One connection carries heartbeats both ways: both now agree.
	waitFor(t, "b steps down", func() bool { return na.IsMaster() && !nb.IsMaster() })
	if err := nb.RemoveServer("a"); err != nil {
		t.Fatal(err)
	}
	if err := nb.RemoveServer("a"); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("RemoveServer twice: %v", err)
	}
	waitFor(t, "both masters again", func() bool { return na.IsMaster() && nb.IsMaster() })
}
