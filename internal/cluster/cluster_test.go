package cluster

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echo is a node that echoes what its peers send it.
type echo struct {
	ln      net.Listener
	ports   []int
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []net.Conn
	stopped bool
}

func (e *echo) Start() error {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			nc, err := e.ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			if e.stopped {
				e.mu.Unlock()
				nc.Close()
				return
			}
			e.conns = append(e.conns, nc)
			e.mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer nc.Close()
				io.Copy(nc, nc)
			}()
		}
	}()
	return nil
}

func (e *echo) Stop() error {
	e.ln.Close()
	e.mu.Lock()
	e.stopped = true
	for _, nc := range e.conns {
		nc.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

func newEchoes(t *testing.T, n int, direct bool) *Cluster[*echo] {
	c := New(Config[*echo]{T: t, N: n, Direct: direct,
		Build: func(i int, ln net.Listener, ports []int, restart bool) (*echo, error) {
			return &echo{ln: ln, ports: ports}, nil
		}})
	c.StartAll()
	return c
}

// roundTrip sends b on nc and reads its echo within d; it reports
// whether the echo came.
func roundTrip(t *testing.T, nc net.Conn, b string, d time.Duration) bool {
	t.Helper()
	if _, err := nc.Write([]byte(b)); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(d))
	got := make([]byte, len(b))
	if _, err := io.ReadFull(nc, got); err != nil {
		return false
	}
	if string(got) != b {
		t.Fatalf("echo %q, want %q", got, b)
	}
	return true
}

// A partition holds the bytes between the groups, and Heal delivers them.
func TestPartitionHeal(t *testing.T) {
	c := newEchoes(t, 3, false)
	nc, err := net.Dial("tcp", fmt.Sprint("127.0.0.1:", c.Nodes[0].ports[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !roundTrip(t, nc, "a", 5*time.Second) {
		t.Fatal("no echo before the partition")
	}
	c.Partition([]int{0}, []int{1, 2})
	if roundTrip(t, nc, "b", 50*time.Millisecond) {
		t.Fatal("an echo across the partition")
	}
	if got, ok := c.Reach(0); !ok || len(got) != 1 {
		t.Fatalf("node 0 reaches %v, %v; want itself", got, ok)
	}
	c.Heal()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 1)
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != "b" {
		t.Fatalf("after Heal: %q, %v; want the held byte", got, err)
	}
	if got, ok := c.Reach(0); !ok || len(got) != 3 {
		t.Fatalf("node 0 reaches %v, %v; want all 3", got, ok)
	}
}

// Restart of a direct cluster listens again on the node's address.
func TestRestartDirect(t *testing.T) {
	c := newEchoes(t, 2, true)
	addr := c.Listeners[1].Addr().String()
	old := c.Node(1)
	if m := c.Restart(1); m == old || c.Node(1) != m {
		t.Fatal("node 1 not replaced")
	}
	if got := c.Listeners[1].Addr().String(); got != addr {
		t.Fatalf("restarted on %s, want %s", got, addr)
	}
	nc, err := net.Dial("tcp", fmt.Sprint("127.0.0.1:", c.Port(0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !roundTrip(t, nc, "a", 5*time.Second) {
		t.Fatal("no echo from the restarted node")
	}
}
