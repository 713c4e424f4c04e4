// Package loopback builds the clusters of the examples: n nodes in one
// process, on 127.0.0.1, each listing all the others. In a deployment
// each node is a process on its own host, and lists its peers' addresses
// (or finds them with Options.Discover); see examples/kubernetes.
package loopback

import (
	"fmt"
	"net"
	"time"

	"github.com/msc-go/msc"
)

// Nodes builds n nodes, not started, from the options o: node i has UID
// "node<i>", listens on a free port of 127.0.0.1, and lists every other
// node as the server "node<j>"; node 0 is the oldest (StartTime), then
// node 1, and so on. o's UID, StartTime and Listener are set for each.
func Nodes(n int, o msc.Options) ([]*msc.Msc, error) {
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, closeAll(lns, err)
		}
		lns[i] = ln
	}
	start := time.Now()
	nodes := make([]*msc.Msc, n)
	for i := range nodes {
		o := o
		o.UID = fmt.Sprint("node", i)
		o.StartTime = start.Add(time.Duration(i) * time.Millisecond)
		o.Listener = lns[i]
		m, err := msc.New(o)
		if err != nil {
			return nil, closeAll(lns, err)
		}
		for j, ln := range lns {
			if j != i {
				if err := m.AddServer(fmt.Sprint("node", j), msc.ServerConfig{Port: ln.Addr().(*net.TCPAddr).Port}); err != nil {
					return nil, closeAll(lns, err)
				}
			}
		}
		nodes[i] = m
	}
	return nodes, nil
}

// closeAll closes the listeners opened, and returns err.
func closeAll(lns []net.Listener, err error) error {
	for _, ln := range lns {
		if ln != nil {
			ln.Close()
		}
	}
	return err
}
