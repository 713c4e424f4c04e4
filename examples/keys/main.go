// Command keys spreads work over a cluster by keys: each node competes for
// some of the keys, and the master of a key is the oldest live node that
// holds it. Three nodes run in one process; the program shows who works on
// which key, then changes the cluster: a node gives up a key (RemoveKey),
// takes another (AddKey), and the oldest node stops.
//
//	go run ./examples/keys
//	go run ./examples/keys -balance   # spread keys by rendezvous hashing
package main

import (
	"flag"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/examples/internal/loopback"
)

// The work, by key.
var keys = []string{"billing", "cleanup", "emails", "reports", "search", "thumbnails"}

func main() {
	balance := flag.Bool("balance", false, "Options.Balance: spread the keys over the nodes instead of giving each to the oldest holder")
	flag.Parse()

	// Three nodes on 127.0.0.1, node0 the oldest.
	nodes, err := loopback.Nodes(3, msc.Options{
		Key:      "keys example passphrase",
		Interval: 50 * time.Millisecond,
		Balance:  *balance,
	})
	if err != nil {
		log.Fatal(err)
	}
	// Which node may work on which key: node0 and node1 can send emails
	// and reports, node1 and node2 can do billing and cleanup, and all of
	// them can index and make thumbnails.
	holds := [][]string{
		{"emails", "reports", "search", "thumbnails"},
		{"billing", "cleanup", "emails", "reports", "search", "thumbnails"},
		{"billing", "cleanup", "search", "thumbnails"},
	}
	for i, m := range nodes {
		if err := m.AddKeys(holds[i]...); err != nil {
			log.Fatal(err)
		}
		if err := m.Start(); err != nil {
			log.Fatal(err)
		}
	}
	defer func() {
		for _, m := range nodes {
			m.Stop() // ErrStopped for node0, stopped below
		}
	}()

	show("all three nodes up", nodes)

	if err := nodes[1].RemoveKey("billing"); err != nil { // peers are told at once
		log.Fatal(err)
	}
	show("node1 gives up billing", nodes)

	if err := nodes[2].AddKey("emails"); err != nil {
		log.Fatal(err)
	}
	show("node2 takes emails too", nodes)

	nodes[0].Stop()
	show("node0 stops", nodes)
}

// show waits until the running nodes agree on the master of every key,
// then prints, per key, the node that works on it.
func show(title string, nodes []*msc.Msc) {
	var running []*msc.Msc
	for _, m := range nodes {
		if m.Status().Running {
			running = append(running, m)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for !agreed(running) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Printf("%s:\n", title)
	for _, k := range keys {
		var workers, holders []string
		for _, m := range running {
			if !has(m, k) {
				continue
			}
			holders = append(holders, m.UID())
			// In a real program: if m.IsMasterByKey(k) { doWork(k) }, or
			// m.DoIfMasterByKey(k, func() { doWork(k) }).
			if m.IsMasterByKey(k) {
				workers = append(workers, m.UID())
			}
		}
		fmt.Printf("  %-10s worked on by %-6s (held by %s)\n", k, strings.Join(workers, ","), strings.Join(holders, ", "))
	}
}

// agreed reports whether, for every key, exactly one running node is its
// master and every holder names it.
func agreed(running []*msc.Msc) bool {
	for _, k := range keys {
		masters := 0
		uid := ""
		for _, m := range running {
			if !has(m, k) {
				continue
			}
			u, ok := m.MasterByKey(k)
			if !ok || (uid != "" && u != uid) {
				return false
			}
			uid = u
			if m.IsMasterByKey(k) {
				masters++
			}
		}
		if uid != "" && masters != 1 {
			return false
		}
	}
	return true
}

func has(m *msc.Msc, key string) bool {
	for _, k := range m.Keys() {
		if k == key {
			return true
		}
	}
	return false
}
