package core

import (
	"fmt"
	"testing"
)

// TestSnapshotSharesChunks: a member of 1,000 keys whose voter changed
// the entry of one key publishes a snapshot that differs from the last
// in that key, copies only its chunk, shares the others, and leaves the
// snapshot published before as it was (readers hold it without a lock).
// An election that changes nothing publishes nothing.
func TestSnapshotSharesChunks(t *testing.T) {
	c, keys := newTableMember(t)
	now := 1000 * ms
	before := c.Snap()
	was := before.states()
	for j, st := range was {
		if st.UID != "other" || st.Term != 1 {
			t.Fatalf("key %s: %+v, want other's, term 1", keys[j], st)
		}
	}

	c.Elect(now)
	if c.Snap() != before {
		t.Fatal("an election that changed nothing published a new snapshot")
	}

	const j = 200 // in chunk 3
	c.Recv(now, now, 1, &Msg{UID: "v0", Start: selfAt - 1, Inc: 1, Sent: now, Echo: c.Sent(), Version: 2, Full: true, Base: 1,
		Table: map[string]TableEntry{keys[j]: {Rightful: "other", Acting: "other", Term: 7}}})
	c.Elect(now)
	after := c.Snap()
	if after == before {
		t.Fatal("a new term of a key published no new snapshot")
	}
	if st := *after.At(j); st.Term != 7 || st.UID != "other" {
		t.Fatalf("key %s after: %+v, want other's, term 7", keys[j], st)
	}
	for x, st := range before.states() {
		if st != was[x] {
			t.Fatalf("the published snapshot changed: key %s %+v, was %+v", keys[x], st, was[x])
		}
	}
	shared := 0
	for ci := range after.chunks {
		if &after.chunks[ci][0] == &before.chunks[ci][0] {
			shared++
		} else if ci != j>>chunkBits {
			t.Errorf("chunk %d copied; only the key at %d changed", ci, j)
		}
	}
	if want := len(after.chunks) - 1; shared != want {
		t.Fatalf("%d chunks shared, want %d", shared, want)
	}
	var diffs []int
	after.Diff(before, func(x int, now, was KeyState) { diffs = append(diffs, x) })
	if len(diffs) != 1 || diffs[0] != j {
		t.Fatalf("Diff reports %v, want [%d]", diffs, j)
	}
}

// TestSnapshotLeaving: a node that leaves publishes a snapshot that names
// no master of any key, and keeps it; the snapshot before stays as it was.
func TestSnapshotLeaving(t *testing.T) {
	c, keys := newTableMember(t)
	now := 1000 * ms
	before := c.Snap()
	was := before.states()
	c.SetLeave(now)
	left := c.Snap()
	if left.Running || left.Len() != len(keys) {
		t.Fatalf("after SetLeave: running %v, %d keys", left.Running, left.Len())
	}
	for j, st := range left.states() {
		if st != (KeyState{}) {
			t.Fatalf("after SetLeave, key %s: %+v, want none", keys[j], st)
		}
	}
	for j, st := range before.states() {
		if st != was[j] {
			t.Fatalf("the snapshot before changed: key %s %+v, was %+v", keys[j], st, was[j])
		}
	}
	c.Elect(now + ms)
	if c.Snap() != left {
		t.Fatal("an election after the leave published another snapshot")
	}
}

// newTableMember returns a started member of 1,000 keys whose three
// voters' tables name "other" master of each, term 1, and the keys.
func newTableMember(t *testing.T) (*Core, []string) {
	t.Helper()
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("job-%04d", i)
	}
	voters := []string{"v0", "v1", "v2"}
	cfg := Config{UID: "self", Start: selfAt, Inc: 1, Interval: ruleInterval, Wait: ruleWait, Balance: true,
		Voters: map[string]bool{"v0": true, "v1": true, "v2": true}}
	c := New(cfg, keys, nil)
	now := 1000 * ms
	c.Start(now, voters)
	table := map[string]TableEntry{}
	for _, k := range keys {
		table[k] = TableEntry{Rightful: "other", Acting: "other", Term: 1}
	}
	for i, v := range voters {
		c.Up(now, ConnID(i+1), v, uint64(i))
		c.Recv(now, now, ConnID(i+1), &Msg{UID: v, Start: selfAt - int64(i+1), Inc: 1, Sent: now, Echo: c.Sent(), Version: 1, Full: true, Table: table})
	}
	c.Tick(now)
	if s := c.Snap(); !s.Ready || s.Len() != len(keys) {
		t.Fatalf("not ready (%v) or %d keys", s.Ready, s.Len())
	}
	return c, keys
}
