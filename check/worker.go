//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/internal/core"
	"github.com/msc-go/msc/internal/testhook"
)

// workerEnv, set to "1", makes the binary run as a worker.
const workerEnv = "MSC_CHECK_WORKER"

// demoKey is the passphrase the workers share.
const demoKey = "msc check demo key"

// allKeys are the keys the workers compete for.
var allKeys = []string{"1", "2", "3"}

// workerKeys returns the keys worker i holds: each key is held by two
// workers out of three, in a pattern that makes per-key masters differ
// from the global one (worker 1 is master of key "3" while worker 0 lives).
func workerKeys(i int) []string {
	var keys []string
	for k := 1; k <= len(allKeys); k++ {
		if (i+k)%3 != 0 {
			keys = append(keys, strconv.Itoa(k))
		}
	}
	return keys
}

// Balance mode (-balance): every worker holds the same keys, named by
// balanceKeys, and the library spreads their masters over the workers
// (Options.Balance). A worker's report then carries counts and sums of
// hashes instead of a line per key, so that it stays small however many
// keys there are; check adds them up over the running workers.

// maxBalanceKeys is the most keys -keys accepts.
const maxBalanceKeys = 10000

// balanceKeys returns the n keys of balance mode: "q-000", "q-001"…
func balanceKeys(n int) []string {
	width := max(3, len(strconv.Itoa(n-1)))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("q-%0*d", width, i)
	}
	return keys
}

// keyHash hashes s to 64 bits, the same in every process: the library's
// key hash (FNV-1a, then a finalizer that mixes every input bit into
// every output bit), so that sums of hashes of different sets of keys
// almost never coincide.
func keyHash(s string) uint64 { return core.KeyHash(s) }

// sumHashes returns the sum, modulo 2^64, of the hashes of keys: what the
// MasteredSum of the running workers adds up to when every key has
// exactly one master among them.
func sumHashes(keys []string) uint64 {
	var sum uint64
	for _, k := range keys {
		sum += keyHash(k)
	}
	return sum
}

// viewHash is one key's term in a worker's ViewSum: the key and the UID
// of its master, as the worker sees it.
func viewHash(key, master string) uint64 { return keyHash(key + "\x00" + master) }

// report is one line a worker writes on its standard output.
type report struct {
	// Type is "hello" (started), "status" (periodic), "change" (from
	// OnChange), "error" (from OnError) or "bye" (stopped).
	Type   string `json:"type"`
	Worker int    `json:"worker"`
	PID    int    `json:"pid"`
	UID    string `json:"uid"`
	// Start is the node's StartTime, Unix nanoseconds.
	Start int64 `json:"start"`
	// TS is when the line was written, Unix nanoseconds, worker's clock.
	TS int64 `json:"ts"`
	// At, on a change that ends the global mastership, is when the
	// node's snapshot stopped making it master (testhook.SteppedDown), if
	// before TS and after the last report that read IsMaster true: not
	// master from then on.
	At        int64                `json:"at,omitempty"`
	Ready     bool                 `json:"ready"`
	Master    bool                 `json:"master"`
	MasterUID string               `json:"master_uid,omitempty"`
	Keys      map[string]keyReport `json:"keys,omitempty"`
	Peers     int                  `json:"peers"`
	Change    *changeReport        `json:"change,omitempty"`
	Err       string               `json:"err,omitempty"`
	// Startup marks an error a normal start expects: a server this
	// process could not reach, while it knows of no process of that
	// worker that went away. Either it has not heard from the worker yet
	// (not started), or it has since the dial failed (the worker started
	// in the meantime and dialed this one). check does not count it.
	Startup bool `json:"startup,omitempty"`

	// Balance mode only, in place of Keys. Held is how many keys the
	// worker holds; Mastered how many it is master of (MasterKeys);
	// MasteredSum the sum of their keyHash; ViewSum the sum of
	// viewHash(key, master) over the keys it holds, equal on every worker
	// that sees the same master for every key.
	Held        int    `json:"held,omitempty"`
	Mastered    int    `json:"mastered,omitempty"`
	MasteredSum uint64 `json:"mastered_sum,omitempty"`
	ViewSum     uint64 `json:"view_sum,omitempty"`
}

// changedAt is when the change a report describes happened, as far as
// the worker knows: At if set and earlier, else TS.
func (r *report) changedAt() int64 {
	if r.At != 0 && r.At < r.TS {
		return r.At
	}
	return r.TS
}

type keyReport struct {
	Master bool   `json:"master"`
	UID    string `json:"uid,omitempty"`
}

type changeReport struct {
	Key      string `json:"key"`
	IsMaster bool   `json:"is_master"`
	Master   string `json:"master,omitempty"`
}

// addBalance fills in the balance mode fields from the node's keys: Held,
// Mastered (what len(MasterKeys()) returns for the same snapshot),
// MasteredSum and ViewSum.
func (rep *report) addBalance(keys []msc.KeyStatus) {
	rep.Held = len(keys)
	for _, k := range keys {
		if k.IsMaster {
			rep.Mastered++
			rep.MasteredSum += keyHash(k.Key)
		}
		rep.ViewSum += viewHash(k.Key, k.Master)
	}
}

// reporter writes reports one at a time. The state and the timestamp are
// read under the lock, so that a worker's lines are in time order and each
// line's state is no older than the lines before it.
type reporter struct {
	mu      sync.Mutex
	enc     *json.Encoder
	m       *msc.Msc
	idx     int
	pid     int
	start   int64
	balance bool
	// lastMaster is the time of the last report that read IsMaster true.
	lastMaster int64
}

func (r *reporter) write(typ string, ch *msc.Change, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The time before the status: a change is reported as of when its
	// callback began, not after the status call that describes it.
	// IsMaster is read at that instant too (lock-free): Status runs on
	// the elector, which may first finish a step that makes this node
	// master (a resumed node taking over), and its answer stamped with
	// the earlier time would look like two masters at once.
	ts := time.Now().UnixNano()
	master := r.m.IsMaster()
	st := r.m.Status()
	rep := report{
		Type: typ, Worker: r.idx, PID: r.pid, UID: st.UID, Start: r.start,
		Ready: st.Ready, Master: master, MasterUID: st.Master,
	}
	for _, p := range st.Peers {
		if p.Live {
			rep.Peers++
		}
	}
	switch {
	case r.balance:
		// The keys of st, not MasterKeys: the same snapshot as the rest
		// of the report.
		rep.addBalance(st.Keys)
	case len(st.Keys) > 0:
		rep.Keys = make(map[string]keyReport, len(st.Keys))
		for _, k := range st.Keys {
			rep.Keys[k.Key] = keyReport{Master: k.IsMaster, UID: k.Master}
		}
	}
	if ch != nil {
		rep.Change = &changeReport{Key: ch.Key, IsMaster: ch.IsMaster, Master: ch.Master}
		if ch.Key == "" && !ch.IsMaster && !master {
			// Dated by the step-down itself: on a machine loaded by many
			// workers, this callback may run milliseconds after it, and
			// the node that took over may report sooner: check would
			// count two masters at once that never were. (IsMaster may
			// turn false earlier, when the node's heartbeats are late,
			// never later. A takeover stays dated by its report: IsMaster
			// may turn true later than the snapshot, once a node whose
			// heartbeats were late has sent again.)
			if at := testhook.SteppedDown(r.m); at > r.lastMaster && at < ts {
				rep.At = at
			}
		}
	}
	if err != nil {
		rep.Err = err.Error()
		rep.Startup = startupError(err, st.Peers)
	}
	rep.TS = ts
	if master {
		r.lastMaster = ts
	}
	r.enc.Encode(rep) // a parent that went away is noticed on stdin
}

// startupError reports whether err, reported while the node's peers are
// peers, is one a normal start expects: a server (a worker, by index)
// unreachable while no process of that worker is known and gone. The
// callback runs after the dial failed, maybe after the worker's own dial
// reached this one: a worker heard from and still live is one that
// started meanwhile.
func startupError(err error, peers []msc.PeerStatus) bool {
	var pe *msc.PeerError
	if !errors.As(err, &pe) || !errors.Is(err, msc.ErrUnreachable) {
		return false
	}
	return !slices.ContainsFunc(peers, func(p msc.PeerStatus) bool {
		return !p.Live && workerOf(p.UID) == pe.Peer
	})
}

// workerOf returns the index, as a string, of the worker whose node has
// UID uid: "w3-1234" (pid 1234) or, for a voter, "w3".
func workerOf(uid string) string {
	s, _, _ := strings.Cut(strings.TrimPrefix(uid, "w"), "-")
	return s
}

// quietReport is the status report period after the parent's "quiet".
const quietReport = 10 * time.Second

// floorMain is one of the idle scenario's reference processes (-floor):
// the same binary, no node, a timer every interval on the same phase as the
// nodes' heartbeats. Alone (ports empty), it only wakes: what any Go process
// that wakes that often costs on this machine. With ports, the references
// form a full mesh over loopback TCP, one connection per pair, and each
// sends every peer one frame of a steady heartbeat's size at each tick, and
// reads theirs, one goroutine per connection, as the nodes do: the same
// traffic without the library (no sealing, no election).
func floorMain(interval time.Duration, idx int, ports []int) int {
	var conns []net.Conn
	if len(ports) > 0 {
		var err error
		if conns, err = meshConns(idx, ports); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			return 1
		}
		for _, c := range conns {
			go func() {
				var frame [steadyFrame]byte
				for {
					c.SetReadDeadline(time.Now().Add(3 * interval))
					if _, err := io.ReadFull(c, frame[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						return
					}
				}
			}()
		}
	}
	var frame [steadyFrame]byte
	iv := int64(interval)
	t := time.NewTimer(time.Duration(iv - time.Now().UnixNano()%iv))
	for range t.C {
		t.Reset(time.Duration(iv - time.Now().UnixNano()%iv))
		for _, c := range conns {
			c.Write(frame[:])
		}
	}
	return 0
}

// steadyFrame is the size of a steady heartbeat frame (aes128, a short
// uid), as TestHeartbeatFrameSizes pins it.
const steadyFrame = 86

// meshConns connects reference idx to every other: it dials those after
// it and accepts those before it.
func meshConns(idx int, ports []int) ([]net.Conn, error) {
	ln, err := listenRetry(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[idx])), 3*time.Second)
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	var conns []net.Conn
	for _, p := range ports[idx+1:] {
		var c net.Conn
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if c, err = net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	for range idx {
		c, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// workerMain runs one node until SIGTERM, SIGINT or the end of its
// standard input (the parent went away), then stops it and returns 0.
func workerMain(args []string) int {
	started := time.Now()
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	idx := fs.Int("index", 0, "this worker's index")
	portList := fs.String("ports", "", "comma-separated ports of all workers")
	interval := fs.Duration("interval", msc.DefaultInterval, "heartbeat interval")
	wait := fs.Duration("wait", 0, "WaitTimeout (0: 3*interval)")
	every := fs.Duration("report", 100*time.Millisecond, "status report period")
	debug := fs.Bool("debug", false, "log the library's debug messages on stderr")
	balance := fs.Bool("balance", false, "Options.Balance, with the same -keys keys on every worker")
	nkeys := fs.Int("keys", 100, "balance: how many keys")
	quorum := fs.Int("quorum", 0, "Options.Quorum")
	nvoters := fs.Int("voters", 0, "workers 0 to voters-1 are voters (Options.Voters), the others members")
	floor := fs.Bool("floor", false, "run the idle scenario's reference process, not a node")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var ports []int
	if *portList != "" {
		for _, s := range strings.Split(*portList, ",") {
			p, err := strconv.Atoi(s)
			if err != nil {
				fmt.Fprintf(os.Stderr, "worker: bad -ports %q\n", *portList)
				return 2
			}
			ports = append(ports, p)
		}
	}
	if (*idx < 0 || *idx >= len(ports)) && !(*floor && len(ports) == 0) {
		fmt.Fprintf(os.Stderr, "worker: index %d out of range\n", *idx)
		return 2
	}
	if *floor {
		return floorMain(*interval, *idx, ports)
	}
	keys := workerKeys(*idx)
	if *idx < *nvoters {
		keys = nil // voters hold no keys: the members master them
	}
	if *balance {
		if *nkeys < 1 || *nkeys > maxBalanceKeys {
			fmt.Fprintf(os.Stderr, "worker: -keys must be 1 to %d\n", maxBalanceKeys)
			return 2
		}
		keys = balanceKeys(*nkeys)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	ln, err := listenRetry(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[*idx])), 3*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	pid := os.Getpid()
	uid := fmt.Sprintf("w%d-%d", *idx, pid)
	var voters []string
	for j := range *nvoters {
		voters = append(voters, fmt.Sprintf("w%d", j))
	}
	if *idx < *nvoters {
		uid = voters[*idx] // a voter's UID stays the same across restarts, as a StatefulSet pod's name
	}
	m, err := msc.New(msc.Options{
		Key:         demoKey,
		Algorithm:   "aes128",
		Listener:    ln,
		StartTime:   started,
		Interval:    *interval,
		WaitTimeout: *wait,
		UID:         uid,
		Voters:      voters,
		Keys:        keys,
		Balance:     *balance,
		Quorum:      *quorum,
		Logger:      logger(*debug),
	})
	if err != nil {
		ln.Close()
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	for j, p := range ports {
		if j == *idx || *nvoters > 0 && j >= *nvoters {
			continue // with voters, every worker dials the voters only
		}
		if err := m.AddServer(strconv.Itoa(j), msc.ServerConfig{Host: "127.0.0.1", Port: p}); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			return 1
		}
	}
	r := &reporter{enc: json.NewEncoder(os.Stdout), m: m, idx: *idx, pid: pid, start: started.UnixNano(), balance: *balance}
	// keysMoved asks, in balance mode, for a status report soon: a worker
	// joining or leaving moves many keys at once, and a line for each
	// key's change would flood check.
	keysMoved := make(chan struct{}, 1)
	m.OnChange(func(ch msc.Change) {
		if *balance && ch.Key != "" {
			select {
			case keysMoved <- struct{}{}:
			default:
			}
			return
		}
		r.write("change", &ch, nil)
	})
	m.OnError(func(err error) { r.write("error", nil, err) })
	if err := m.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	r.write("hello", nil, nil)

	// The parent's commands, one per line on standard input: "quiet"
	// slows the status reports to one every quietReport (the idle
	// scenario measures the node, not its reports), "loud" brings them
	// back to -report. EOF: the parent went away.
	eof := make(chan struct{})
	period := make(chan time.Duration, 1)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			var d time.Duration
			switch sc.Text() {
			case "quiet":
				d = quietReport
			case "loud":
				d = *every
			default:
				continue
			}
			select {
			case <-period:
			default:
			}
			period <- d
		}
		close(eof)
	}()
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			r.write("status", nil, nil)
			continue
		case d := <-period:
			tick.Reset(d)
			r.write("status", nil, nil)
			continue
		case <-keysMoved:
			r.write("status", nil, nil)
			continue
		case <-sigs:
		case <-eof:
		}
		break
	}
	m.Stop()
	r.write("bye", nil, nil)
	return 0
}

// logger returns the library's logger: debug messages on stderr, each
// with a Unix-nanosecond timestamp check can merge with the reports, or
// nothing.
func logger(debug bool) *slog.Logger {
	if !debug {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Int64("ts", a.Value.Time().UnixNano())
			}
			return a
		},
	}))
}

// listenRetry listens on addr, retrying for a while: a worker started
// again may find its port still held by the connection of a peer.
func listenRetry(addr string, d time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(d)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			return ln, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
