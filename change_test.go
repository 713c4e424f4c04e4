package msc

import (
	"context"
	"slices"
	"sync"
	"testing"
)

func TestWatch(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) { o.Keys = []string{"k"} }).start()
	c.waitMaster(c.nodes[0])
	ctx, cancel := context.WithCancel(context.Background())
	ch := c.nodes[1].Watch(ctx, "")
	first := <-ch
	if first.IsMaster || first.Master != "node0" {
		t.Fatalf("first value %+v, want the current state", first)
	}
	kch := c.nodes[1].Watch(ctx, "k")
	if k := <-kch; k.Key != "k" || k.IsMaster || k.Master != "node0" {
		t.Fatalf("first key value %+v", k)
	}
	// A burst of changes while nobody reads: the channel keeps the newest.
	for range 5 {
		c.nodes[1].RemoveKey("k")
		c.nodes[1].AddKey("k")
	}
	c.nodes[0].Stop()
	waitFor(t, "node1 master", c.nodes[1].IsMaster)
	var got Change
	waitFor(t, "latest state", func() bool {
		select {
		case got = <-ch:
		default:
		}
		return got.IsMaster
	})
	if got.Master != "node1" || got.Term == 0 {
		t.Fatalf("latest %+v", got)
	}
	cancel()
	waitFor(t, "closed on cancel", func() bool {
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return true
				}
			default:
				return false
			}
		}
	})
	// A stopped node's channel holds the last state and is closed.
	c.nodes[1].Stop()
	sch := c.nodes[1].Watch(context.Background(), "")
	if v, ok := <-sch; !ok || v.IsMaster {
		t.Fatalf("stopped node watch: %+v %v", v, ok)
	}
	if _, ok := <-sch; ok {
		t.Fatal("stopped node's watch channel not closed")
	}
}

func TestOnChange(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) { o.Keys = []string{"k"} })
	var mu sync.Mutex
	var got []Change
	c.nodes[1].OnChange(func(ch Change) { mu.Lock(); got = append(got, ch); mu.Unlock() })
	c.start()
	c.waitMaster(c.nodes[0])
	c.nodes[0].Stop()
	want := []Change{
		{Key: "", IsMaster: true, Master: "node1"},
		{Key: "k", IsMaster: true, Master: "node1"},
	}
	waitFor(t, "changes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ch := range got {
			term := ch.Term
			ch.Term = 0
			if slices.Contains(want, ch) {
				if term == 0 {
					t.Errorf("change without a term: %+v", ch)
				}
				n++
			}
		}
		return n == len(want)
	})
	mu.Lock()
	for _, ch := range got {
		if ch.IsMaster && ch.Master != "node1" {
			t.Errorf("odd change %+v", ch)
		}
	}
	mu.Unlock()
	c.nodes[1].Stop()
	mu.Lock()
	defer mu.Unlock()
	last := got[len(got)-1]
	if last.IsMaster {
		t.Fatalf("no step-down change on Stop: %+v", got)
	}
}
