//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	"github.com/msc-go/msc"
)

// A node process prints one line to stdout each time its view of the
// leader changes: "view <unix nanoseconds> <leader>", "-" for none. The
// parent reads these lines; it sends the node nothing and ends it with a
// signal.

// nodeArgs is what the parent tells a node process.
type nodeArgs struct {
	lib      string
	index    int
	ports    []int
	start    time.Time // this incarnation's start, the order of msc and memberlist
	first    bool      // the cluster's first start: raft bootstraps
	interval time.Duration
	wait     time.Duration
}

// name is the stable name of node i: msc's UID, raft's server ID.
func name(i int) string { return "node" + strconv.Itoa(i) }

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// reporter prints the node's view when it changes.
type reporter struct {
	mu   sync.Mutex
	last string
	any  bool
}

func (r *reporter) report(leader string) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.any && leader == r.last {
		return
	}
	r.any, r.last = true, leader
	if leader == "" {
		leader = "-"
	}
	fmt.Fprintf(os.Stdout, "view %d %s\n", now, leader)
}

// runNode runs one node until SIGTERM or SIGINT (the parent usually sends
// SIGKILL).
func runNode(a nodeArgs) error {
	var rep reporter
	var stop func()
	var err error
	switch a.lib {
	case "msc":
		stop, err = mscNode(a, &rep)
	case "raft":
		stop, err = raftNode(a, &rep)
	case "memberlist":
		stop, err = memberlistNode(a, &rep)
	default:
		err = fmt.Errorf("unknown -lib %q", a.lib)
	}
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	stop()
	return nil
}

// mscNode: msc's defaults (Interval 100 ms, WaitTimeout 300 ms), the
// default AES-GCM sealing, a full mesh given with AddServer; the leader
// is Master().
func mscNode(a nodeArgs, rep *reporter) (func(), error) {
	m, err := msc.New(msc.Options{
		UID:         name(a.index),
		Key:         "compare passphrase",
		Host:        "127.0.0.1",
		Port:        a.ports[a.index],
		Interval:    a.interval,
		WaitTimeout: a.wait,
		StartTime:   a.start,
	})
	if err != nil {
		return nil, err
	}
	for j, p := range a.ports {
		if j != a.index {
			if err := m.AddServer(name(j), msc.ServerConfig{Host: "127.0.0.1", Port: p}); err != nil {
				return nil, err
			}
		}
	}
	m.OnChange(func(c msc.Change) {
		if c.Key == "" {
			rep.report(c.Master)
		}
	})
	if err := m.Start(); err != nil {
		return nil, err
	}
	return func() { m.Stop() }, nil
}

// raftTimeouts maps msc's timing to raft's: a follower that hears no
// leader for HeartbeatTimeout (to twice that, randomised) becomes a
// candidate, as an msc node counts a silent peer dead after WaitTimeout;
// a candidate's election times out after ElectionTimeout; a leader that
// hears no quorum for LeaderLeaseTimeout steps down. All three are set
// to WaitTimeout. raft sends a leader's heartbeats every
// HeartbeatTimeout/10 (randomised up to twice that): a ratio fixed in the
// library, not settable.
func raftTimeouts(c *raft.Config, wait time.Duration) {
	c.HeartbeatTimeout = wait
	c.ElectionTimeout = wait
	c.LeaderLeaseTimeout = wait
}

// raftNode: in-memory log, stable and snapshot stores, a TCP transport
// on 127.0.0.1, the five nodes bootstrapped as voters at the first start;
// a restarted node starts empty and is brought up to date by the leader.
// The leader is the LeaderObservation's ID.
func raftNode(a nodeArgs, rep *reporter) (func(), error) {
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(name(a.index))
	raftTimeouts(conf, a.wait)
	conf.LogOutput = io.Discard
	conf.LogLevel = "error"
	self := addr(a.ports[a.index])
	tcp, err := net.ResolveTCPAddr("tcp", self)
	if err != nil {
		return nil, err
	}
	trans, err := raft.NewTCPTransport(self, tcp, 3, time.Second, io.Discard)
	if err != nil {
		return nil, err
	}
	logs, stable, snaps := raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore()
	if a.first {
		var cfg raft.Configuration
		for j, p := range a.ports {
			cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(name(j)), Address: raft.ServerAddress(addr(p))})
		}
		if err := raft.BootstrapCluster(conf, logs, stable, snaps, trans, cfg); err != nil {
			return nil, err
		}
	}
	r, err := raft.NewRaft(conf, nopFSM{}, logs, stable, snaps, trans)
	if err != nil {
		return nil, err
	}
	obs := make(chan raft.Observation, 16)
	r.RegisterObserver(raft.NewObserver(obs, true, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	go func() {
		for o := range obs {
			rep.report(string(o.Data.(raft.LeaderObservation).LeaderID))
		}
	}()
	_, id := r.LeaderWithID()
	rep.report(string(id))
	return func() { r.Shutdown().Error() }, nil
}

// nopFSM is a state machine that holds nothing: no entries are applied.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

// memberlistConfig is memberlist's DefaultLANConfig with every duration
// scaled by interval/ProbeInterval (1/10 for 100 ms), so that a node
// probes one peer every interval, as an msc node sends a heartbeat every
// Interval; the multipliers (SuspicionMult 4, SuspicionMaxTimeoutMult 6,
// IndirectChecks 3, RetransmitMult 4, GossipNodes 3) are the LAN ones.
// At 5 nodes a suspect is declared dead after 4 to 24 ProbeIntervals,
// less the more peers confirm the suspicion.
func memberlistConfig(interval time.Duration) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	scale := func(d time.Duration) time.Duration { return d * interval / c.ProbeInterval }
	c.TCPTimeout = scale(c.TCPTimeout)
	c.PushPullInterval = scale(c.PushPullInterval)
	c.ProbeTimeout = scale(c.ProbeTimeout)
	c.GossipInterval = scale(c.GossipInterval)
	c.GossipToTheDeadTime = scale(c.GossipToTheDeadTime)
	c.QueueCheckInterval = scale(c.QueueCheckInterval)
	c.ProbeInterval = interval
	return c
}

// memberlistNode: the master is the oldest live member, as in msc: a
// member's name is its start time (zero-padded nanoseconds) then its
// stable name, so the least name is the oldest, ties broken by the stable
// name. A member counts as live from memberlist's join event until its
// leave event (declared dead, or left), as Members() counts them: a
// suspect is still a member.
func memberlistNode(a nodeArgs, rep *reporter) (func(), error) {
	ev := &mlEvents{rep: rep, live: map[string]bool{}}
	c := memberlistConfig(a.interval)
	c.Name = fmt.Sprintf("%020d-%s", a.start.UnixNano(), name(a.index))
	c.BindAddr, c.AdvertiseAddr = "127.0.0.1", "127.0.0.1"
	c.BindPort, c.AdvertisePort = a.ports[a.index], a.ports[a.index]
	c.Events = ev
	c.LogOutput = io.Discard
	m, err := memberlist.Create(c)
	if err != nil {
		return nil, err
	}
	var peers []string
	for j, p := range a.ports {
		if j != a.index {
			peers = append(peers, addr(p))
		}
	}
	done := make(chan struct{})
	go func() {
		// Join whoever is up; the first nodes started find none at
		// first, and are joined by the later ones.
		for m.NumMembers() < 2 {
			if n, _ := m.Join(peers); n > 0 {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(a.interval):
			}
		}
	}()
	return func() { close(done); m.Leave(time.Second); m.Shutdown() }, nil
}

// mlEvents keeps the set of live members from memberlist's events, and
// reports the oldest. The events come with memberlist's lock held: the
// handler must not call back into memberlist.
type mlEvents struct {
	rep  *reporter
	mu   sync.Mutex
	live map[string]bool
}

func (e *mlEvents) NotifyJoin(n *memberlist.Node)   { e.set(n.Name, true) }
func (e *mlEvents) NotifyLeave(n *memberlist.Node)  { e.set(n.Name, false) }
func (e *mlEvents) NotifyUpdate(n *memberlist.Node) {}

func (e *mlEvents) set(n string, live bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if live {
		e.live[n] = true
	} else {
		delete(e.live, n)
	}
	names := make([]string, 0, len(e.live))
	for n := range e.live {
		names = append(names, n)
	}
	sort.Strings(names)
	master := ""
	if len(names) > 0 {
		_, master, _ = strings.Cut(names[0], "-")
	}
	e.rep.report(master)
}
