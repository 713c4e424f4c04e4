//go:build linux

// Command compare runs msc, hashicorp/raft and hashicorp/memberlist side
// by side, each as -n real processes on 127.0.0.1, at msc's default
// timing (Interval 100 ms, WaitTimeout 300 ms) mapped onto the others'
// settings, and prints a table of
//
//   - idle CPU per node, as a share of one core, over -idle of steady
//     state with no faults: the threads' run time from
//     /proc/<pid>/task/*/schedstat, and for reference utime+stime from
//     /proc/<pid>/stat (sampled at clock ticks, coarse for a process that
//     runs well under a tick at a time); and RSS from /proc/<pid>/status;
//   - crash failover: the leader (raft), the master (msc) or the oldest
//     live member (memberlist) is killed with SIGKILL; the time from the
//     kill until every survivor names the same new leader, over -rounds
//     rounds (the killed node is restarted between rounds).
//
// Usage:
//
//	cd compare && go run . -lib all
//	go run . -lib raft -rounds 10 -idle 30s
//
// The program re-executes itself as each node (-node). See README.md.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/msc-go/msc/internal/procstat"
)

func main() {
	lib := flag.String("lib", "all", "msc, raft, memberlist, or all")
	n := flag.Int("n", 5, "processes per cluster")
	idle := flag.Duration("idle", 10*time.Second, "idle CPU window")
	settle := flag.Duration("settle", 2*time.Second, "steady time before the idle window and between rounds")
	rounds := flag.Int("rounds", 5, "crash failover rounds")
	interval := flag.Duration("interval", 100*time.Millisecond, "msc Interval (memberlist ProbeInterval)")
	wait := flag.Duration("wait", 300*time.Millisecond, "msc WaitTimeout (raft HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout)")
	node := flag.String("node", "", "internal: run as a node of this library")
	index := flag.Int("index", 0, "internal: this node's index")
	ports := flag.String("ports", "", "internal: the nodes' ports, comma-separated")
	start := flag.Int64("start", 0, "internal: this incarnation's start time, Unix nanoseconds")
	first := flag.Bool("first", false, "internal: the cluster's first start")
	flag.Parse()

	if *node != "" {
		var ps []int
		for _, s := range strings.Split(*ports, ",") {
			p, err := strconv.Atoi(s)
			if err != nil {
				fail(err)
			}
			ps = append(ps, p)
		}
		err := runNode(nodeArgs{lib: *node, index: *index, ports: ps, start: time.Unix(0, *start),
			first: *first, interval: *interval, wait: *wait})
		if err != nil {
			fail(err)
		}
		return
	}

	libs := []string{*lib}
	if *lib == "all" {
		libs = []string{"msc", "raft", "memberlist"}
	}
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	fmt.Printf("compare: %d processes per library on 127.0.0.1, interval %v, wait %v, idle window %v, %d crash rounds; %d CPUs, %s, %s\n",
		*n, *interval, *wait, *idle, *rounds, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format("2006-01-02"))
	var results []result
	for _, l := range libs {
		c := &cluster{lib: l, exe: exe, n: *n, interval: *interval, wait: *wait}
		r, err := c.run(*idle, *settle, *rounds)
		c.close()
		if err != nil {
			fail(fmt.Errorf("%s: %v", l, err))
		}
		results = append(results, r)
	}
	printTable(os.Stdout, results)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "compare:", err)
	os.Exit(1)
}

// result is one library's figures.
type result struct {
	lib           string
	cpu           []float64 // % of a core, per node, from the scheduler's run time
	cpuTicks      []float64 // the same from utime+stime, sampled at each clock tick
	rss           []float64 // MB, per node
	anon          []float64 // MB, per node: the anonymous part of rss
	leaderCPU     float64   // % of a core: the leader's, during the idle window
	changes       int       // view changes seen during the idle window
	failover      []time.Duration
	lostLeaderFor []time.Duration // per round: the longest a survivor named no leader
}

// proc is one node process and the last view it printed.
type proc struct {
	cmd   *exec.Cmd
	pid   int
	view  string // the leader it names, "" for none
	since int64  // when it took that view (its own clock, Unix ns)
	none  int64  // when it last started naming no leader, 0 if it names one
	gone  bool
}

// cluster is one library's -n node processes.
type cluster struct {
	lib, exe string
	n        int
	interval time.Duration
	wait     time.Duration
	ports    []int

	mu      sync.Mutex
	cond    *sync.Cond
	procs   []*proc
	changes int
	noneMax []int64 // per node: the longest stretch without a leader since reset
}

func (c *cluster) run(idle, settle time.Duration, rounds int) (result, error) {
	res := result{lib: c.lib}
	c.cond = sync.NewCond(&c.mu)
	var err error
	if c.ports, err = freePorts(c.n); err != nil {
		return res, err
	}
	c.procs = make([]*proc, c.n)
	base := time.Now()
	for i := range c.n {
		if err := c.start(i, base.Add(time.Duration(i)*time.Millisecond), true); err != nil {
			return res, err
		}
	}
	if _, err := c.waitAgree(nil, 30*time.Second); err != nil {
		return res, fmt.Errorf("first convergence: %v", err)
	}
	time.Sleep(settle)

	// Idle.
	c.mu.Lock()
	pids := make([]int, c.n)
	for i, p := range c.procs {
		pids[i] = p.pid
	}
	c.changes = 0
	idleLeader := nodeIndex(c.procs[0].view, c.n)
	c.mu.Unlock()
	before := make([]float64, c.n)
	beforeTicks := make([]float64, c.n)
	for i, pid := range pids {
		if before[i], err = procstat.RunSeconds(pid); err != nil {
			return res, err
		}
		if beforeTicks[i], err = procstat.CPUSeconds(pid); err != nil {
			return res, err
		}
	}
	t0 := time.Now()
	time.Sleep(idle)
	el := time.Since(t0).Seconds()
	for i, pid := range pids {
		t, err := procstat.RunSeconds(pid)
		if err != nil {
			return res, err
		}
		res.cpu = append(res.cpu, 100*(t-before[i])/el)
		if t, err = procstat.CPUSeconds(pid); err != nil {
			return res, err
		}
		res.cpuTicks = append(res.cpuTicks, 100*(t-beforeTicks[i])/el)
		rss, anon := rssMB(pid)
		res.rss = append(res.rss, rss)
		res.anon = append(res.anon, anon)
	}
	res.leaderCPU = res.cpu[idleLeader]
	c.mu.Lock()
	res.changes = c.changes
	c.mu.Unlock()
	fmt.Printf("%s: idle CPU per node %s %% of a core (the leader %s: %.3f %%; from utime+stime: %s), RSS %s MB (anonymous %s MB), %d view changes in %v\n",
		c.lib, floats(res.cpu, 3), name(idleLeader), res.leaderCPU, floats(res.cpuTicks, 3), floats(res.rss, 1), floats(res.anon, 1), res.changes, idle)

	// Crash failover.
	for r := range rounds {
		c.mu.Lock()
		leader := c.procs[0].view
		c.mu.Unlock()
		victim := nodeIndex(leader, c.n)
		if victim < 0 {
			return res, fmt.Errorf("round %d: leader %q is not a node", r, leader)
		}
		c.mu.Lock()
		p := c.procs[victim]
		p.gone = true
		c.noneMax = make([]int64, c.n)
		for _, q := range c.procs {
			q.none = 0
		}
		kill := time.Now().UnixNano()
		err := syscall.Kill(p.pid, syscall.SIGKILL)
		c.mu.Unlock()
		if err != nil {
			return res, err
		}
		at, err := c.waitAgree(func(v string) bool { return v != leader }, 30*time.Second)
		if err != nil {
			return res, fmt.Errorf("round %d: failover: %v", r, err)
		}
		d := time.Duration(at - kill)
		c.mu.Lock()
		var noLeader int64
		for i := range c.procs {
			if i != victim {
				noLeader = max(noLeader, c.noneMax[i])
			}
		}
		newLeader := c.procs[(victim+1)%c.n].view
		c.mu.Unlock()
		res.failover = append(res.failover, d)
		res.lostLeaderFor = append(res.lostLeaderFor, time.Duration(noLeader))
		fmt.Printf("%s: round %d: killed %s (the leader); all %d survivors name %s %.1f ms after the kill (longest without a leader: %.1f ms)\n",
			c.lib, r+1, leader, c.n-1, newLeader, ms(d), ms(time.Duration(noLeader)))
		p.cmd.Wait()
		if err := c.start(victim, time.Now(), false); err != nil {
			return res, err
		}
		if _, err := c.waitAgree(nil, 30*time.Second); err != nil {
			return res, fmt.Errorf("round %d: after restart: %v", r, err)
		}
		time.Sleep(settle)
	}
	return res, nil
}

// nodeIndex returns the index of the node named v, or -1.
func nodeIndex(v string, n int) int {
	for i := range n {
		if name(i) == v {
			return i
		}
	}
	return -1
}

// start starts node i, with the start time t (the order of msc and
// memberlist), and reads its views.
func (c *cluster) start(i int, t time.Time, first bool) error {
	list := make([]string, len(c.ports))
	for j, p := range c.ports {
		list[j] = strconv.Itoa(p)
	}
	args := []string{"-node", c.lib, "-index", strconv.Itoa(i), "-ports", strings.Join(list, ","),
		"-start", strconv.FormatInt(t.UnixNano(), 10), "-interval", c.interval.String(), "-wait", c.wait.String()}
	if first {
		args = append(args, "-first")
	}
	cmd := exec.Command(c.exe, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid}
	c.mu.Lock()
	c.procs[i] = p
	c.mu.Unlock()
	go c.read(i, p, out)
	return nil
}

// read takes node i's view lines.
func (c *cluster) read(i int, p *proc, out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "view" {
			continue
		}
		t, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		v := f[2]
		if v == "-" {
			v = ""
		}
		c.mu.Lock()
		if p.none != 0 && c.noneMax != nil {
			c.noneMax[i] = max(c.noneMax[i], t-p.none)
		}
		p.none = 0
		if v == "" {
			p.none = t
		}
		p.view, p.since = v, t
		c.changes++
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// waitAgree waits until every live node names the same leader, a node,
// for which ok (if not nil) holds; it returns the latest time one of them
// took that view, on the nodes' clocks.
func (c *cluster) waitAgree(ok func(string) bool, limit time.Duration) (int64, error) {
	timer := time.AfterFunc(limit, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(limit)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		var v string
		var at int64
		agree := true
		for _, p := range c.procs {
			if p.gone {
				continue
			}
			if v == "" {
				v = p.view
			}
			if p.view == "" || p.view != v {
				agree = false
				break
			}
			at = max(at, p.since)
		}
		if i := nodeIndex(v, c.n); agree && i >= 0 && !c.procs[i].gone && (ok == nil || ok(v)) {
			return at, nil
		}
		if time.Now().After(deadline) {
			var views []string
			for i, p := range c.procs {
				views = append(views, fmt.Sprintf("%s:%q", name(i), p.view))
			}
			return 0, fmt.Errorf("no agreement in %v: %s", limit, strings.Join(views, " "))
		}
		c.cond.Wait()
	}
}

func (c *cluster) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p != nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	}
}

// freePorts returns n ports of 127.0.0.1 free for TCP and UDP
// (memberlist uses both).
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	var pcs []net.PacketConn
	defer func() {
		for _, l := range lns {
			l.Close()
		}
		for _, pc := range pcs {
			pc.Close()
		}
	}()
	for len(ports) < n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		p := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		pcs = append(pcs, pc)
		ports = append(ports, p)
	}
	return ports, nil
}

// rssMB returns the resident set of process pid and its anonymous part
// (the process's own memory, without the binary's and libraries' pages),
// from /proc/pid/status.
func rssMB(pid int) (rss, anon float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "RssAnon:":
			anon = kb / 1024
		}
	}
	return rss, anon
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func floats(v []float64, prec int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', prec, 64)
	}
	return strings.Join(s, " ")
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// printTable prints the libraries' figures side by side.
func printTable(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nlibrary\tidle CPU per node, % of a core: mean (min–max)\tthe leader's\tfrom utime+stime: mean\tRSS per node, MB: mean (anonymous)\tview changes while idle\tcrash failover: min / median / max\tlongest without a leader: median (max)")
	for _, r := range rs {
		f := slices.Clone(r.failover)
		slices.Sort(f)
		l := slices.Clone(r.lostLeaderFor)
		slices.Sort(l)
		fo, lost := "—", "—"
		if len(f) > 0 {
			fo = fmt.Sprintf("%.1f / %.1f / %.1f ms (%d rounds)", ms(f[0]), ms(median(f)), ms(f[len(f)-1]), len(f))
			lost = fmt.Sprintf("%.1f (%.1f) ms", ms(median(l)), ms(l[len(l)-1]))
		}
		fmt.Fprintf(tw, "%s\t%.3f (%.3f–%.3f)\t%.3f\t%.3f\t%.1f (%.1f)\t%d\t%s\t%s\n", r.lib,
			mean(r.cpu), slices.Min(r.cpu), slices.Max(r.cpu), r.leaderCPU, mean(r.cpuTicks), mean(r.rss), mean(r.anon), r.changes, fo, lost)
	}
	tw.Flush()
}

func median(d []time.Duration) time.Duration {
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}
