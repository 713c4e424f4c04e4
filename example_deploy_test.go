package msc_test

import (
	"bufio"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/msc-go/msc"
)

// Peers from the headless Service of a Kubernetes Deployment: every
// replica resolves the name to the list of pods, itself included, and
// dials the others. (examples/kubernetes is a complete program.)
func ExampleDNS() {
	m, err := msc.New(msc.Options{
		Key:      "a shared passphrase",
		Port:     8778,
		Discover: msc.DNS("msc-peers.default.svc.cluster.local", 8778),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(); err != nil {
		log.Fatal(err)
	}
	defer m.Stop()
}

// Two nodes given the same static list, each in it: each recognises its
// own address and dials only the other.
func ExampleStatic() {
	lns := []net.Listener{listen(), listen()}
	list := msc.Static(lns[0].Addr().String() + ", " + lns[1].Addr().String()) // e.g. os.Getenv("MSC_PEERS")
	start := time.Now()
	var nodes []*msc.Msc
	for i, ln := range lns {
		m, err := msc.New(msc.Options{
			Key:       "a shared passphrase",
			Listener:  ln,
			UID:       fmt.Sprint("node", i),
			StartTime: start.Add(time.Duration(i) * time.Millisecond),
			Discover:  list,
		})
		if err != nil {
			log.Fatal(err)
		}
		if err := m.Start(); err != nil {
			log.Fatal(err)
		}
		defer m.Stop()
		nodes = append(nodes, m)
	}
	for {
		uid, _ := nodes[1].Master()
		if nodes[0].IsMaster() && uid == "node0" && len(nodes[1].Status().Servers) == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("master:", nodes[0].UID())
	fmt.Println("node1 dials:", strings.HasPrefix(nodes[1].Status().Servers[0], "discover:"))
	// Output:
	// master: node0
	// node1 dials: true
}

// Probes and metrics over HTTP: /healthz for readiness, /master for a load
// balancer that should reach the master only, /metrics for Prometheus.
func ExampleMsc_Handler() {
	m, err := msc.New(msc.Options{Key: "a shared passphrase", Listener: listen(), UID: "node0", Keys: []string{"reports"}})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(); err != nil {
		log.Fatal(err)
	}
	defer m.Stop()

	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second}
	ln := listen()
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	for _, path := range []string{"/healthz", "/master", "/master?key=reports", "/metrics"} {
		resp, err := http.Get(base + path)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(path, resp.StatusCode)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "msc_is_master") {
				fmt.Println("  ", sc.Text())
			}
		}
		resp.Body.Close()
	}
	// Output:
	// /healthz 200
	// /master 200
	// /master?key=reports 200
	// /metrics 200
	//    msc_is_master{key=""} 1
	//    msc_is_master{key="reports"} 1
}
