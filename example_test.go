package msc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"slices"
	"time"

	"github.com/msc-go/msc"
)

// listen returns a listener on a free loopback port, so that examples
// never clash on ports.
func listen() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	return ln
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// waitUntil polls cond for up to ten seconds.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// A node with no servers is a cluster of one: it is master as soon as
// Start returns.
func ExampleNew() {
	m, err := msc.New(msc.Options{
		Key:      "a shared passphrase",
		Listener: listen(), // or Host and Port
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(); err != nil {
		log.Fatal(err)
	}
	defer m.Stop()
	fmt.Println("master:", m.IsMaster())
	// Output: master: true
}

// New checks the options: a cluster with encryption needs a key.
func ExampleNew_options() {
	_, err := msc.New(msc.Options{Algorithm: "aes256"})
	fmt.Println(err)
	_, err = msc.New(msc.Options{Key: "k", Interval: time.Second, WaitTimeout: time.Millisecond})
	fmt.Println(err != nil)
	// Output:
	// msc: empty key: an encryption algorithm needs a Key
	// true
}

func ExampleMsc_IsMaster() {
	m, err := msc.New(msc.Options{Key: "a shared passphrase", Listener: listen()})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("before Start:", m.IsMaster())
	m.Start()
	fmt.Println("running alone:", m.IsMaster())
	m.Stop()
	fmt.Println("after Stop:", m.IsMaster())
	// Output:
	// before Start: false
	// running alone: true
	// after Stop: false
}

// DoIfMaster runs the callback at once on the master. On another node it
// queues it: the callback runs 2*WaitTimeout later if the node is master
// by then, and is dropped otherwise.
func ExampleMsc_DoIfMaster() {
	m, err := msc.New(msc.Options{Key: "a shared passphrase", Listener: listen()})
	if err != nil {
		log.Fatal(err)
	}
	m.Start()
	defer m.Stop()
	m.DoIfMaster(func() { fmt.Println("cleanup runs on the master only") })
	// Output: cleanup runs on the master only
}

// Keys share the work: the master of a key is the oldest live node that
// holds it. Here node a, the oldest, is the global master and the master
// of "reports"; node b is the master of "billing", which only it holds.
func ExampleMsc_AddKey() {
	start := time.Now()
	lna, lnb := listen(), listen()
	a, _ := msc.New(msc.Options{Key: "k", Listener: lna, UID: "a", StartTime: start, Interval: 20 * time.Millisecond})
	b, _ := msc.New(msc.Options{Key: "k", Listener: lnb, UID: "b", StartTime: start.Add(time.Second), Interval: 20 * time.Millisecond})
	a.AddServer("b", msc.ServerConfig{Port: port(lnb)})
	b.AddServer("a", msc.ServerConfig{Port: port(lna)})
	a.Start()
	defer a.Stop()
	b.Start()
	defer b.Stop()

	a.AddKey("reports")
	b.AddKey("reports")
	b.AddKey("billing")
	waitUntil(func() bool { // until both have heard from each other
		uid, _ := b.MasterByKey("reports")
		return uid == "a" && a.IsMaster() && b.IsMasterByKey("billing")
	})
	for _, m := range []*msc.Msc{a, b} {
		fmt.Printf("%s: master %v, reports %v, billing %v\n",
			m.UID(), m.IsMaster(), m.IsMasterByKey("reports"), m.IsMasterByKey("billing"))
	}
	// Output:
	// a: master true, reports true, billing false
	// b: master false, reports false, billing true
}

// OnChange reports each change of mastership this node sees, global (Key
// "") and per key, on a goroutine of the node.
func ExampleMsc_OnChange() {
	m, err := msc.New(msc.Options{Key: "k", Listener: listen(), UID: "a", Keys: []string{"jobs"}})
	if err != nil {
		log.Fatal(err)
	}
	changes := make(chan msc.Change, 16)
	m.OnChange(func(c msc.Change) { changes <- c })
	m.Start()
	defer m.Stop()
	var got []string
	for len(got) < 2 {
		c := <-changes
		got = append(got, fmt.Sprintf("key %q: master %v (%s)", c.Key, c.IsMaster, c.Master))
	}
	slices.Sort(got)
	for _, s := range got {
		fmt.Println(s)
	}
	// Output:
	// key "": master true (a)
	// key "jobs": master true (a)
}

// Status is a snapshot of what a node knows, for display and debugging.
func ExampleMsc_Status() {
	m, err := msc.New(msc.Options{Key: "k", Listener: listen(), UID: "a", Keys: []string{"jobs"}})
	if err != nil {
		log.Fatal(err)
	}
	m.Start()
	defer m.Stop()
	st := m.Status()
	fmt.Println(st.UID, st.Running, st.IsMaster, st.Master, len(st.Peers))
	for _, k := range st.Keys {
		fmt.Println(k.Key, k.IsMaster, k.Master)
	}
	// Output:
	// a true true a 0
	// jobs true a
}

// When the master stops, it tells its peers, and the next oldest node takes
// over at once.
func Example_failover() {
	start := time.Now()
	var nodes []*msc.Msc
	var lns []net.Listener
	for i := range 3 {
		lns = append(lns, listen())
		m, err := msc.New(msc.Options{
			Key:       "k",
			Listener:  lns[i],
			UID:       fmt.Sprint("node", i),
			StartTime: start.Add(time.Duration(i) * time.Second), // node0 is the oldest
			Interval:  20 * time.Millisecond,
		})
		if err != nil {
			log.Fatal(err)
		}
		nodes = append(nodes, m)
	}
	for i, m := range nodes {
		for j := range nodes {
			if j != i {
				m.AddServer(fmt.Sprint(j), msc.ServerConfig{Port: port(lns[j])})
			}
		}
	}
	for _, m := range nodes {
		m.Start()
		defer m.Stop()
	}
	// agree waits until the running nodes from first on all name want.
	agree := func(first int, want string) bool {
		return waitUntil(func() bool {
			for _, m := range nodes[first:] {
				if uid, ok := m.Master(); !ok || uid != want || m.IsMaster() != (m.UID() == want) {
					return false
				}
			}
			return true
		})
	}
	agree(0, "node0")
	fmt.Println("master:", nodes[0].IsMaster(), nodes[1].IsMaster(), nodes[2].IsMaster())
	nodes[0].Stop()
	agree(1, "node1")
	fmt.Println("master:", nodes[0].IsMaster(), nodes[1].IsMaster(), nodes[2].IsMaster())
	// Output:
	// master: true false false
	// master: false true false
}

// RunAsMaster runs fn while the node is master, with the term of that
// mastership, and cancels fn's context when mastership ends, the node
// stops or ctx is done. A lone node is master at once, with term 1.
func ExampleMsc_RunAsMaster() {
	m, err := msc.New(msc.Options{Key: "k", Listener: listen(), UID: "a"})
	if err != nil {
		log.Fatal(err)
	}
	m.Start()
	defer m.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = m.RunAsMaster(ctx, func(ctx context.Context, term uint64) {
		fmt.Println("master, term", term)
		// The work goes on until ctx is done. Here the program decides
		// to end it at once, as it would on shutdown.
		cancel()
		<-ctx.Done()
		fmt.Println("work stops:", ctx.Err())
	})
	fmt.Println("RunAsMaster returned:", err)
	// Output:
	// master, term 1
	// work stops: context canceled
	// RunAsMaster returned: context canceled
}

// Watch returns a channel that holds the current state first, then the
// newest change; it is closed when the node stops (or ctx is done).
func ExampleMsc_Watch() {
	m, err := msc.New(msc.Options{Key: "k", Listener: listen(), UID: "a"})
	if err != nil {
		log.Fatal(err)
	}
	m.Start()

	ch := m.Watch(context.Background(), "") // "": the global mastership
	c := <-ch
	fmt.Printf("now: master %v (%q), term %d\n", c.IsMaster, c.Master, c.Term)
	m.Stop()
	for c := range ch { // the state the node stopped in, then closed
		fmt.Printf("after Stop: master %v (%q)\n", c.IsMaster, c.Master)
	}
	// Output:
	// now: master true ("a"), term 1
	// after Stop: master false ("")
}

// Term is a fencing token: it strictly increases each time mastership
// passes to another node. Here a is master with term 1; when it stops, b
// takes over with term 2. A store that refuses writes with a lower term
// than one it has seen then refuses a's late writes.
func ExampleMsc_Term() {
	start := time.Now()
	lna, lnb := listen(), listen()
	a, _ := msc.New(msc.Options{Key: "k", Listener: lna, UID: "a", StartTime: start})
	b, _ := msc.New(msc.Options{Key: "k", Listener: lnb, UID: "b", StartTime: start.Add(time.Second)})
	a.AddServer("b", msc.ServerConfig{Port: port(lnb)})
	b.AddServer("a", msc.ServerConfig{Port: port(lna)})
	a.Start()
	defer a.Stop()
	b.Start()
	defer b.Stop()

	waitUntil(func() bool { // until b has heard from a, and of its term
		uid, _ := b.Master()
		return a.IsMaster() && uid == "a" && b.Term() == a.Term()
	})
	fmt.Printf("a: master %v, term %d\n", a.IsMaster(), a.Term())
	a.Stop() // a tells b it leaves: b takes over at once
	waitUntil(b.IsMaster)
	fmt.Printf("b: master %v, term %d\n", b.IsMaster(), b.Term())
	// Output:
	// a: master true, term 1
	// b: master true, term 2
}

// pair starts two nodes that dial each other; a is the older.
func pair(oa, ob msc.Options) (a, b *msc.Msc) {
	start := time.Now()
	lna, lnb := listen(), listen()
	oa.Key, oa.Listener, oa.UID, oa.StartTime = "k", lna, "a", start
	ob.Key, ob.Listener, ob.UID, ob.StartTime = "k", lnb, "b", start.Add(time.Second)
	a, _ = msc.New(oa)
	b, _ = msc.New(ob)
	a.AddServer("b", msc.ServerConfig{Port: port(lnb)})
	b.AddServer("a", msc.ServerConfig{Port: port(lna)})
	a.Start()
	b.Start()
	return a, b
}

// Before maintenance on the master's machine, raise another node's
// priority: mastership moves to it with no moment of two masters.
func ExampleMsc_SetPriority() {
	a, b := pair(msc.Options{}, msc.Options{})
	defer a.Stop()
	defer b.Stop()
	waitUntil(a.IsMaster)
	fmt.Println("a master:", a.IsMaster())
	b.SetPriority(1)
	waitUntil(b.IsMaster)
	fmt.Println("b master:", b.IsMaster(), "a master:", a.IsMaster())
	// Output:
	// a master: true
	// b master: true a master: false
}

// Each node publishes where it serves requests; a replica that is not the
// master finds the master's address to forward a request to.
func ExampleMsc_MasterMeta() {
	a, b := pair(msc.Options{Meta: map[string]string{"http": "10.0.0.1:8080"}},
		msc.Options{Meta: map[string]string{"http": "10.0.0.2:8080"}})
	defer a.Stop()
	defer b.Stop()
	waitUntil(func() bool { _, ok := b.MasterMeta(""); return ok && a.IsMaster() })
	meta, _ := b.MasterMeta("")
	fmt.Println("forward to", meta["http"])
	// Output: forward to 10.0.0.1:8080
}

// An observer knows the master but never becomes master, even as the
// oldest node.
func ExampleOptions_observer() {
	a, b := pair(msc.Options{Observer: true}, msc.Options{})
	defer a.Stop()
	defer b.Stop()
	waitUntil(func() bool { uid, ok := a.Master(); return ok && uid == "b" && b.IsMaster() })
	uid, _ := a.Master()
	fmt.Println("master:", uid, "observer is master:", a.IsMaster())
	// Output: master: b observer is master: false
}
