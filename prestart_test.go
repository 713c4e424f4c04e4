package msc

import (
	"testing"
	"time"
)

// TestBeforeStart: every method a program may call between New and
// Start answers at once (none waits for an elector that does not run yet),
// and what it changed holds after Start.
func TestBeforeStart(t *testing.T) {
	o := testOptions(0)
	o.Listener = listen(t)
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i, err := range []error{
			m.AddKey("a"),
			m.AddKeys("b", "c"),
			m.RemoveKey("c"),
			m.SetPriority(3),
			m.SetMeta(map[string]string{"http": ":1"}),
			m.Update("a"),
		} {
			if err != nil {
				t.Errorf("call %d before Start: %v", i, err)
			}
		}
		if st := m.Status(); st.IsMaster || len(st.Keys) != 2 || st.Priority != 3 {
			t.Errorf("Status before Start: master %v, keys %v, priority %d", st.IsMaster, st.Keys, st.Priority)
		}
		if err := m.Healthy(); err == nil {
			t.Error("Healthy before Start: nil")
		}
		if _, ok := m.MasterMeta(""); ok {
			t.Error("MasterMeta before Start: a master")
		}
		if m.IsMaster() {
			t.Error("IsMaster before Start")
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a method called before Start blocks")
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "master of a and b", func() bool { return m.IsMaster() && m.IsMasterByKey("a") && m.IsMasterByKey("b") })
	if m.IsMasterByKey("c") {
		t.Error("master of c, removed before Start")
	}
	if meta, ok := m.MasterMeta(""); !ok || meta["http"] != ":1" {
		t.Errorf("MasterMeta after Start: %v %v", meta, ok)
	}
	if st := m.Status(); st.Priority != 3 {
		t.Errorf("priority %d after Start, want 3", st.Priority)
	}
}
