package msc_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/msctest"
)

// TestByKeyEmptyIsGlobal checks the rule of keys (doc.go): every method
// that takes a key answers for key "" exactly as its global twin does, on
// the global master and on a node that is not. Node 1 alone holds key "k":
// it is master of "k" but not the global master, so a method that took ""
// for a key, or for no mastership at all, answers otherwise.
func TestByKeyEmptyIsGlobal(t *testing.T) {
	c := msctest.NewCluster(t, 2, func(i int, o *msc.Options) {
		o.Meta = map[string]string{"node": fmt.Sprint(i)}
		if i == 1 {
			o.Keys = []string{"k"}
		}
	})
	c.WaitMaster(0)
	n0, n1 := c.Node(0), c.Node(1)
	deadline := time.Now().Add(20 * time.Second)
	for !n1.IsMasterByKey("k") || !metaKnown(n0, n1) {
		if time.Now().After(deadline) {
			t.Fatal("node1 did not become master of k, or the master's metadata did not arrive")
		}
		time.Sleep(time.Millisecond)
	}
	if n1.IsMaster() || !n0.IsMaster() {
		t.Fatal("node0 is not the only global master")
	}

	type answer = func(m *msc.Msc) any
	for _, tc := range []struct {
		name           string
		byKey, twin    answer
		differsForNode int // -1, or the node on which key "k" answers otherwise than the twin
	}{
		{
			name:  "IsMasterByKey/IsMaster",
			byKey: func(m *msc.Msc) any { return m.IsMasterByKey("") },
			twin:  func(m *msc.Msc) any { return m.IsMaster() },
		},
		{
			name:  "MasterByKey/Master",
			byKey: func(m *msc.Msc) any { uid, ok := m.MasterByKey(""); return fmt.Sprint(uid, ok) },
			twin:  func(m *msc.Msc) any { uid, ok := m.Master(); return fmt.Sprint(uid, ok) },
		},
		{
			name:  "TermByKey/Term",
			byKey: func(m *msc.Msc) any { return m.TermByKey("") },
			twin:  func(m *msc.Msc) any { return m.Term() },
		},
		{
			name:  "DoIfMasterByKey/DoIfMaster",
			byKey: func(m *msc.Msc) any { ran := false; m.DoIfMasterByKey("", func() { ran = true }); return ran },
			twin:  func(m *msc.Msc) any { ran := false; m.DoIfMaster(func() { ran = true }); return ran },
		},
		{
			name: "RunAsMasterByKey/RunAsMaster",
			byKey: func(m *msc.Msc) any {
				return runOnce(m, func(ctx context.Context, fn runFn) error { return m.RunAsMasterByKey(ctx, "", fn) })
			},
			twin: func(m *msc.Msc) any { return runOnce(m, m.RunAsMaster) },
		},
		{
			// MasterMeta has no twin: for "" it is the metadata of the
			// node Master names.
			name:  "MasterMeta/Master's Meta",
			byKey: func(m *msc.Msc) any { meta, ok := m.MasterMeta(""); return fmt.Sprint(meta, ok) },
			twin: func(m *msc.Msc) any {
				uid, ok := m.Master()
				return fmt.Sprint(map[string]string{"node": strings.TrimPrefix(uid, "node")}, ok)
			},
		},
		{
			// Watch has no twin: for "" its first value is the global
			// mastership as IsMaster, Master and Term answer.
			name: "Watch/IsMaster,Master,Term",
			byKey: func(m *msc.Msc) any {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				return <-m.Watch(ctx, "")
			},
			twin: func(m *msc.Msc) any {
				uid, _ := m.Master()
				return msc.Change{IsMaster: m.IsMaster(), Master: uid, Term: m.Term()}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []*msc.Msc{n0, n1} {
				got, want := tc.byKey(m), tc.twin(m)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: for key \"\" %v, its global twin %v", m.UID(), got, want)
				}
			}
		})
	}
}

// metaKnown reports whether both nodes know the global master's
// metadata.
func metaKnown(nodes ...*msc.Msc) bool {
	for _, m := range nodes {
		if meta, ok := m.MasterMeta(""); !ok || meta["node"] != "0" {
			return false
		}
	}
	return true
}

type runFn = func(ctx context.Context, term uint64)

// runResult is what one call of RunAsMaster(ByKey) did in 200ms.
type runResult struct {
	Ran  bool
	Term uint64
	Err  error
}

// runOnce calls run with a context that ends after 200ms and a function
// that records its term and returns, and returns what happened.
func runOnce(m *msc.Msc, run func(context.Context, runFn) error) runResult {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var r runResult
	err := run(ctx, func(_ context.Context, term uint64) { r.Ran, r.Term = true, term })
	if errors.Is(err, context.DeadlineExceeded) {
		err = context.DeadlineExceeded // the same error, whatever wraps it
	}
	r.Err = err
	return r
}
