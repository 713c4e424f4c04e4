package msc_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"

	"github.com/msc-go/msc"
)

// A lone node started with no servers is master as soon as Start returns.
func ExampleMsc_Start() {
	m, err := msc.New(msc.Options{Key: "a shared passphrase", Listener: listen()})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(); err != nil {
		log.Fatal(err)
	}
	defer m.Stop()
	fmt.Println("master:", m.IsMaster())
	fmt.Println("again:", errors.Is(m.Start(), msc.ErrStarted))
	// Output:
	// master: true
	// again: true
}

// The call of Stop that stops the node returns nil; a later one returns
// ErrStopped, as does every method that would change the node.
func ExampleMsc_Stop() {
	m, err := msc.New(msc.Options{Key: "k", Listener: listen()})
	if err != nil {
		log.Fatal(err)
	}
	m.Start()
	fmt.Println("Stop:", m.Stop())
	fmt.Println("Stop again:", errors.Is(m.Stop(), msc.ErrStopped))
	fmt.Println("AddKey:", errors.Is(m.AddKey("jobs"), msc.ErrStopped))
	fmt.Println("master:", m.IsMaster())
	// Output:
	// Stop: <nil>
	// Stop again: true
	// AddKey: true
	// master: false
}

// Every node lists the others under ids of its choosing. An id is added
// once.
func ExampleMsc_AddServer() {
	lna, lnb := listen(), listen()
	a, _ := msc.New(msc.Options{Key: "k", Listener: lna, UID: "a"})
	b, _ := msc.New(msc.Options{Key: "k", Listener: lnb, UID: "b"})
	if err := a.AddServer("b", msc.ServerConfig{Host: "127.0.0.1", Port: port(lnb)}); err != nil {
		log.Fatal(err)
	}
	if err := b.AddServer("a", msc.ServerConfig{Host: "127.0.0.1", Port: port(lna)}); err != nil {
		log.Fatal(err)
	}
	a.Start()
	defer a.Stop()
	b.Start()
	defer b.Stop()
	waitUntil(func() bool { // until both name one master, and it says so
		ua, _ := a.Master()
		ub, _ := b.Master()
		return ua != "" && ua == ub && a.IsMaster() != b.IsMaster()
	})
	fmt.Println("one master:", a.IsMaster() != b.IsMaster())
	err := a.AddServer("b", msc.ServerConfig{Port: port(lnb)})
	fmt.Println(errors.Is(err, msc.ErrServerExists))
	// Output:
	// one master: true
	// true
}

// RemoveServer stops dialing a server; an id it does not know is an
// error.
func ExampleMsc_RemoveServer() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen()})
	m.AddServer("old", msc.ServerConfig{Port: 1})
	m.Start()
	defer m.Stop()
	fmt.Println(m.RemoveServer("old"))
	fmt.Println(errors.Is(m.RemoveServer("old"), msc.ErrUnknownServer))
	// Output:
	// <nil>
	// true
}

// AddKeys and RemoveKeys change several keys in one election and one
// message to the peers; an invalid key refuses the whole call.
func ExampleMsc_AddKeys() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen()})
	m.Start()
	defer m.Stop()
	if err := m.AddKeys("billing", "emails", "reports"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Keys())
	err := m.AddKeys("search", "") // "" is the global mastership, not a key
	fmt.Println(errors.Is(err, msc.ErrInvalidKey), m.Keys())
	// Output:
	// [billing emails reports]
	// true [billing emails reports]
}

// RemoveKey gives a key up: the node resigns it, waits for its
// RunAsMasterByKey functions, then stops competing for it.
func ExampleMsc_RemoveKey() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"billing", "emails"}})
	m.Start()
	defer m.Stop()
	if err := m.RemoveKey("billing"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Keys(), m.IsMasterByKey("billing"))
	// Output: [emails] false
}

// RemoveKeys removes several keys at once.
func ExampleMsc_RemoveKeys() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"a", "b", "c"}})
	m.Start()
	defer m.Stop()
	if err := m.RemoveKeys("a", "c"); err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Keys())
	// Output: [b]
}

// Keys lists the keys a node competes for; MasterKeys those it masters.
func ExampleMsc_Keys() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"reports", "billing"}})
	m.Start()
	defer m.Stop()
	fmt.Println(m.Keys())
	// Output: [billing reports]
}

// A lone node masters every key it holds.
func ExampleMsc_MasterKeys() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"reports", "billing"}})
	m.Start()
	defer m.Stop()
	fmt.Println(m.MasterKeys())
	// Output: [billing reports]
}

// IsMasterByKey is false for a key the node does not hold; for key "" it
// is IsMaster.
func ExampleMsc_IsMasterByKey() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"reports"}})
	m.Start()
	defer m.Stop()
	fmt.Println(m.IsMasterByKey("reports"), m.IsMasterByKey("billing"), m.IsMasterByKey("") == m.IsMaster())
	// Output: true false true
}

// DoIfMasterByKey runs the callback at once on the master of the key.
func ExampleMsc_DoIfMasterByKey() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"reports"}})
	m.Start()
	defer m.Stop()
	m.DoIfMasterByKey("reports", func() { fmt.Println("reports run on their master only") })
	// Output: reports run on their master only
}

// Master and MasterByKey name the master a node knows of. Node a, the
// older, is the global master; b alone holds "billing".
func ExampleMsc_Master() {
	a, b := pair(msc.Options{}, msc.Options{Keys: []string{"billing"}})
	defer a.Stop()
	defer b.Stop()
	waitUntil(func() bool { uid, _ := b.Master(); return uid == "a" && a.IsMaster() })
	uid, ok := b.Master()
	fmt.Println("global:", uid, ok)
	uid, ok = b.MasterByKey("billing")
	fmt.Println("billing:", uid, ok)
	_, ok = a.MasterByKey("billing") // a does not hold it
	fmt.Println("billing on a:", ok)
	// Output:
	// global: a true
	// billing: b true
	// billing on a: false
}

// Update re-elects and sends at once; the keys it is given are those the
// caller expects the node to hold.
func ExampleMsc_Update() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"reports"}})
	m.Start()
	defer m.Stop()
	fmt.Println(m.Update("reports"))
	fmt.Println(errors.Is(m.Update("reprots"), msc.ErrUnknownKey))
	// Output:
	// <nil>
	// true
}

// OnError receives what goes wrong in the background, such as a server
// that cannot be reached, as a *PeerError naming the peer.
func ExampleMsc_OnError() {
	ln := listen()
	closed := port(ln)
	ln.Close() // nothing listens there now
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen()})
	errs := make(chan error, 16)
	m.OnError(func(err error) { errs <- err })
	m.AddServer("gone", msc.ServerConfig{Port: closed})
	m.Start()
	defer m.Stop()
	err := <-errs
	var pe *msc.PeerError
	fmt.Println(errors.As(err, &pe), pe.Peer, errors.Is(err, msc.ErrUnreachable))
	// Output: true gone true
}

// RunAsMasterByKey runs a function while the node is master of a key.
func ExampleMsc_RunAsMasterByKey() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"billing"}})
	m.Start()
	defer m.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	err := m.RunAsMasterByKey(ctx, "billing", func(ctx context.Context, term uint64) {
		fmt.Println("billing, term", term)
		cancel() // the program ends the work, as it would on shutdown
		<-ctx.Done()
	})
	fmt.Println(err)
	// Output:
	// billing, term 1
	// context canceled
}

// TermByKey is the fencing term of a key's mastership; for "" it is Term.
func ExampleMsc_TermByKey() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), Keys: []string{"billing"}})
	m.Start()
	defer m.Stop()
	fmt.Println(m.TermByKey("billing"), m.TermByKey("other"), m.TermByKey("") == m.Term())
	// Output: 1 0 true
}

// SetMeta changes what a node tells its peers about itself, such as where
// it serves; the peers see it within an Interval.
func ExampleMsc_SetMeta() {
	a, b := pair(msc.Options{}, msc.Options{})
	defer a.Stop()
	defer b.Stop()
	if err := a.SetMeta(map[string]string{"http": "10.0.0.1:8080"}); err != nil {
		log.Fatal(err)
	}
	waitUntil(func() bool { meta, _ := b.MasterMeta(""); return meta["http"] != "" && a.IsMaster() })
	meta, _ := b.MasterMeta("")
	fmt.Println("forward to", meta["http"])
	// Output: forward to 10.0.0.1:8080
}

// SetKey rotates the passphrase: first every node accepts the new one
// beside the old, then each seals with the new one, then the old one is
// dropped.
func ExampleMsc_SetKey() {
	m, _ := msc.New(msc.Options{Key: "old", Listener: listen()})
	m.Start()
	defer m.Stop()
	fmt.Println(m.SetKey("old", "new")) // step 1, on every node
	fmt.Println(m.SetKey("new", "old")) // step 2, on every node
	fmt.Println(m.SetKey("new"))        // step 3
	fmt.Println(errors.Is(m.SetKey(""), msc.ErrEmptyKey))
	// Output:
	// <nil>
	// <nil>
	// <nil>
	// true
}

// Healthy is nil while the node's view is fresh: a readiness probe.
func ExampleMsc_Healthy() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen()})
	m.Start()
	fmt.Println(m.Healthy())
	m.Stop()
	err := m.Healthy()
	fmt.Println(errors.Is(err, msc.ErrUnhealthy), errors.Is(err, msc.ErrStopped))
	// Output:
	// <nil>
	// true true
}

// PublishExpvar publishes the node's figures under a name at
// /debug/vars; a name is published once per process.
func ExampleMsc_PublishExpvar() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen()})
	m.Start()
	defer m.Stop()
	m.PublishExpvar("msc_example")
	fmt.Println(errors.Is(m.PublishExpvar("msc_example"), msc.ErrExpvarExists))
	// Output: true
}

// UID and Addr identify a node.
func ExampleMsc_UID() {
	m, _ := msc.New(msc.Options{Key: "k", Listener: listen(), UID: "worker-1"})
	fmt.Println(m.UID(), m.Addr() == nil)
	m.Start()
	defer m.Stop()
	_, _, err := net.SplitHostPort(m.Addr().String())
	fmt.Println(err)
	// Output:
	// worker-1 true
	// <nil>
}
