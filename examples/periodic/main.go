// Command periodic runs a periodic job on the master only, with
// DoIfMaster, on a cluster of three nodes in one process; halfway through,
// the master stops and the next oldest node takes the job over.
//
//	go run ./examples/periodic            # about 3 seconds, then exits
//	go run ./examples/periodic -for 0     # until Ctrl-C
//
// In a real deployment each replica runs one node, and the same loop.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/examples/internal/loopback"
)

func main() {
	every := flag.Duration("every", 250*time.Millisecond, "how often the job is due")
	run := flag.Duration("for", 3*time.Second, "how long to run (0: until Ctrl-C)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *run > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *run)
		defer cancel()
	}

	// Three nodes on 127.0.0.1, node0 the oldest. Each node would
	// normally be a process on its own host.
	nodes, err := loopback.Nodes(3, msc.Options{Key: "periodic example passphrase"})
	if err != nil {
		log.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, m := range nodes {
		m.OnChange(func(c msc.Change) {
			if c.Key == "" && c.IsMaster {
				log.Printf("%s is master now", m.UID())
			}
		})
		if err := m.Start(); err != nil {
			log.Fatal(err)
		}
		// Every replica runs the same loop; only the master does the work.
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx, m, *every)
		}()
	}

	if *run > 0 {
		// Halfway through, the master leaves: it tells its peers, and the
		// next oldest node takes over at once.
		select {
		case <-time.After(*run / 2):
			log.Printf("stopping %s, the master", nodes[0].UID())
			nodes[0].Stop()
		case <-ctx.Done():
		}
	}
	<-ctx.Done()
	wg.Wait()
	for i := len(nodes) - 1; i >= 0; i-- { // youngest first: no failover on the way out
		nodes[i].Stop()
	}
}

// loop calls the job every period, through DoIfMaster: on the master it
// runs at once; on another node it is queued, and runs 2*WaitTimeout later
// if that node is master by then (the master went away before doing it),
// or is dropped. A job that must run at most once per period should test
// IsMaster instead, and skip the period when it is false.
func loop(ctx context.Context, m *msc.Msc, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case due := <-t.C:
			n++
			tick := n
			m.DoIfMaster(func() {
				late := ""
				if d := time.Since(due); d > every/2 {
					late = fmt.Sprintf(" (queued, %v late)", d.Round(time.Millisecond))
				}
				log.Printf("%s: job #%d runs%s", m.UID(), tick, late)
			})
		}
	}
}
