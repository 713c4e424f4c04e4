//go:build unix

package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Worker states, as shown in the table.
const (
	stNone     = "-"
	stStarting = "starting"
	stRunning  = "running"
	stPaused   = "paused"
	stStopping = "stopping"
	stStopped  = "stopped"
	stKilled   = "killed"
	stExited   = "exited"
)

// cluster runs the worker processes and collects their reports.
type cluster struct {
	cfg    *config
	ports  []int
	spawnc chan spawnReq
	spawnd chan struct{} // closed when the spawner has returned

	// mu guards everything below.
	mu      sync.Mutex
	workers []*worker
	tl      timeline
	keyUps  []keyUp // when each worker became master of a key (bench -voters)
	// downEarly: for each step-down dated by the node (report.At), how
	// long before its report it happened.
	downEarly []time.Duration
	live      *liveAnalyzer
	faults    map[int]string // descriptions of faults not yet resolved, by id
	nfault    int
	// faultNames keeps every fault's description, for dump.
	faultNames map[int]string
	// debugLines are the library's debug logs (-debug), for dump.
	debugLines []debugLine
	logs       []logLine // not yet taken by the UI
	closed     bool
	changed    chan struct{} // cap 1: something to redraw

	// Balance mode: the sum of the hashes of all the keys, and the watch
	// that logs their spread.
	wantSum uint64
	kw      keyWatch
}

// worker is one slot of the cluster; proc is its current (or last)
// process.
type worker struct {
	idx   int
	port  int
	keys  []string
	state string
	gen   int
	proc  *proc
}

// proc is one incarnation of a worker.
type proc struct {
	gen     int
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	pid     int
	spawned time.Time
	hello   bool
	rep     report // the latest, by its timestamp
	lastTS  int64  // newest timestamp seen (the spawn time before any)
	open    bool   // its stdout is still open
	member  bool   // counts in the timeline
	expect  string // "kill" or "term": why it is expected to exit
	exited  chan struct{}
	exitErr error
	errs    int // errors reported, without a start's (report.Startup)
	lastErr string
}

type logLine struct {
	at   time.Time
	text string
	warn bool // highlight: two masters, no master, unexpected exit
}

type debugLine struct {
	ts   int64
	w    int
	text string
}

// debugTS returns the timestamp of a debug log line of a worker.
func debugTS(line string) (int64, bool) {
	rest, ok := strings.CutPrefix(line, "ts=")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, " ")
	ts, err := strconv.ParseInt(n, 10, 64)
	return ts, err == nil
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

func newCluster(cfg *config, ports []int) *cluster {
	c := &cluster{
		cfg:        cfg,
		ports:      ports,
		spawnc:     make(chan spawnReq),
		spawnd:     make(chan struct{}),
		faults:     make(map[int]string),
		faultNames: make(map[int]string),
		changed:    make(chan struct{}, 1),
	}
	for i, p := range ports {
		w := &worker{idx: i, port: p, keys: workerKeys(i), state: stNone}
		if i < cfg.voters {
			w.keys = nil // voters hold no keys (worker.go)
		}
		if cfg.balance {
			w.keys = nil // all of them: see spreadLocked
		}
		c.workers = append(c.workers, w)
	}
	if cfg.balance {
		c.wantSum = sumHashes(balanceKeys(cfg.keys))
	}
	c.live = newLiveAnalyzer(&c.tl, time.Now().UnixNano(), cfg.wait)
	go c.spawner()
	return c
}

// spawner starts every worker process from one locked OS thread: on Linux
// the workers get SIGKILL when that thread ends (Pdeathsig), so that
// even a check killed with SIGKILL leaves no worker behind. The thread
// ends with the goroutine, after close has ended every worker.
func (c *cluster) spawner() {
	runtime.LockOSThread()
	defer close(c.spawnd)
	for req := range c.spawnc {
		req.reply <- req.cmd.Start()
	}
}

// fault registers a user action and returns its id.
func (c *cluster) fault(desc string) int {
	c.nfault++
	c.faults[c.nfault] = desc
	c.faultNames[c.nfault] = desc
	return c.nfault
}

func (c *cluster) logf(warn bool, format string, args ...any) {
	c.logAt(time.Now(), warn, format, args...)
}

// logAt logs a line about something that happened at t.
func (c *cluster) logAt(t time.Time, warn bool, format string, args ...any) {
	c.logs = append(c.logs, logLine{at: t, text: fmt.Sprintf(format, args...), warn: warn})
	if len(c.logs) > 2000 { // nobody takes them (a scenario): keep the latest
		c.logs = c.logs[1000:]
	}
	c.poke()
}

func (c *cluster) poke() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// takeLogs returns the log lines written since the last call.
func (c *cluster) takeLogs() []logLine {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.logs
	c.logs = nil
	return l
}

// start starts worker i. desc, if not empty, names the action as a fault
// whose failover is measured. It returns the fault's id and the instant
// the process was started.
func (c *cluster) start(i int, desc string) (int, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.workers) {
		return 0, 0, fmt.Errorf("no worker %d (0-%d)", i, len(c.workers)-1)
	}
	if c.closed {
		return 0, 0, errors.New("shutting down")
	}
	w := c.workers[i]
	switch w.state {
	case stNone, stStopped, stKilled, stExited:
	default:
		return 0, 0, fmt.Errorf("worker %d is %s", i, w.state)
	}
	ports := make([]string, len(c.ports))
	for j, p := range c.ports {
		ports[j] = strconv.Itoa(p)
	}
	args := []string{
		"-index", strconv.Itoa(i),
		"-ports", strings.Join(ports, ","),
		"-interval", c.cfg.interval.String(),
		"-wait", c.cfg.wait.String(),
		"-report", c.cfg.report.String(),
		"-debug=" + strconv.FormatBool(c.cfg.debug),
	}
	if c.cfg.balance {
		args = append(args, "-balance", "-keys", strconv.Itoa(c.cfg.keys))
	}
	switch {
	case c.cfg.quorum && c.cfg.voters > 0:
		args = append(args, "-quorum", strconv.Itoa(c.cfg.voters/2+1))
	case c.cfg.quorum:
		args = append(args, "-quorum", strconv.Itoa(len(c.ports)/2+1))
	}
	if c.cfg.voters > 0 {
		args = append(args, "-voters", strconv.Itoa(c.cfg.voters))
	}
	cmd := exec.Command(c.cfg.exe, args...)
	cmd.Env = append(os.Environ(), workerEnv+"=1")
	cmd.SysProcAttr = sysProcAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, 0, err
	}
	spawned := time.Now()
	reply := make(chan error, 1)
	c.spawnc <- spawnReq{cmd: cmd, reply: reply}
	if err := <-reply; err != nil {
		return 0, 0, fmt.Errorf("starting worker %d: %w", i, err)
	}
	w.gen++
	p := &proc{gen: w.gen, cmd: cmd, stdin: stdin, pid: cmd.Process.Pid, spawned: spawned,
		lastTS: spawned.UnixNano(), open: true, member: true, exited: make(chan struct{})}
	w.proc, w.state = p, stStarting
	id := 0
	if desc != "" {
		id = c.fault(desc)
	}
	c.tl.add(tlEvent{ts: spawned.UnixNano(), kind: tlJoin, who: inc{i, p.gen}, fault: id})
	c.keysFault(spawned.UnixNano())
	go c.read(w, p, stdout, stderr)
	c.poke()
	return id, p.spawned.UnixNano(), nil
}

// Operations on a running worker.
const (
	opKill  = "kill"
	opPause = "pause"
	opCont  = "cont"
	opTerm  = "stop"
)

// opVerb names an operation in the event log.
var opVerb = map[string]string{opKill: "kill", opPause: "pause", opCont: "continue", opTerm: "stop"}

// signal applies op to worker i and returns the fault's id and the instant
// the signal was sent.
func (c *cluster) signal(i int, op string) (int, int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.workers) {
		return 0, 0, fmt.Errorf("no worker %d (0-%d)", i, len(c.workers)-1)
	}
	w := c.workers[i]
	p := w.proc
	ok := false
	switch op {
	case opKill:
		ok = w.state == stStarting || w.state == stRunning || w.state == stPaused || w.state == stStopping
	case opPause:
		ok = w.state == stStarting || w.state == stRunning
	case opCont:
		ok = w.state == stPaused
	case opTerm:
		ok = w.state == stStarting || w.state == stRunning || w.state == stPaused
	}
	if !ok {
		return 0, 0, fmt.Errorf("cannot %s worker %d: it is %s", opVerb[op], i, w.state)
	}
	id := c.fault(fmt.Sprintf("%s %d", opVerb[op], i))
	now := time.Now().UnixNano()
	var err error
	switch op {
	case opKill:
		err = syscall.Kill(p.pid, syscall.SIGKILL)
		p.expect, w.state = "kill", stKilled
	case opPause:
		err = syscall.Kill(p.pid, syscall.SIGSTOP)
		w.state = stPaused
	case opCont:
		err = syscall.Kill(p.pid, syscall.SIGCONT)
		w.state = stRunning
		if !p.hello {
			w.state = stStarting
		}
	case opTerm:
		err = syscall.Kill(p.pid, syscall.SIGTERM)
		if w.state == stPaused {
			syscall.Kill(p.pid, syscall.SIGCONT)
		}
		p.expect, w.state = "term", stStopping
	}
	if err != nil {
		return 0, 0, fmt.Errorf("signalling worker %d: %w", i, err)
	}
	c.keysFault(now)
	who := inc{i, p.gen}
	if op == opCont && !p.member {
		p.member = true
		c.tl.add(tlEvent{ts: now, kind: tlJoin, who: who, fault: id})
	} else if op != opCont && p.member {
		p.member = false
		c.tl.add(tlEvent{ts: now, kind: tlLeave, who: who, fault: id})
	} else {
		c.tl.add(tlEvent{ts: now, kind: tlMark, who: who, fault: id}) // no change, still measured
	}
	c.poke()
	return id, now, nil
}

// read follows one process's output until it exits.
func (c *cluster) read(w *worker, p *proc, stdout, stderr io.Reader) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			if ts, ok := debugTS(line); ok {
				c.debugLines = append(c.debugLines, debugLine{ts: ts, w: w.idx, text: line})
				if len(c.debugLines) > 20000 {
					c.debugLines = c.debugLines[10000:]
				}
			} else if !c.closed {
				c.logf(true, "worker %d: %s", w.idx, line)
			}
			c.mu.Unlock()
		}
	}()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var r report
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			c.mu.Lock()
			c.logf(true, "worker %d: bad report: %q", w.idx, sc.Text())
			c.mu.Unlock()
			continue
		}
		c.onReport(w, p, r)
	}
	c.mu.Lock()
	p.open = false
	c.mu.Unlock()
	<-done
	err := p.cmd.Wait()
	c.onExit(w, p, err)
}

func (c *cluster) onReport(w *worker, p *proc, r report) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.TS > p.lastTS {
		p.lastTS = r.TS
	}
	if r.TS >= p.rep.TS {
		p.rep = r
	}
	switch r.Type {
	case "hello":
		p.hello = true
		if w.proc == p && w.state == stStarting {
			w.state = stRunning
		}
	case "change":
		if r.Change != nil && r.Change.Key == "" {
			ts := r.changedAt()
			if ts < r.TS {
				c.downEarly = append(c.downEarly, time.Duration(r.TS-ts))
			}
			// What IsMaster answered when the report was written, not
			// what the change said: a callback queued before a SIGSTOP
			// runs after the SIGCONT, and its change (a term, say, while
			// master) is stale by then.
			c.tl.add(tlEvent{ts: ts, kind: tlChange, who: inc{w.idx, p.gen}, master: r.Master})
		}
		if r.Change != nil && r.Change.Key != "" && r.Change.IsMaster {
			c.keyUps = append(c.keyUps, keyUp{ts: r.TS, key: r.Change.Key, worker: w.idx})
		}
	case "error":
		if r.Startup {
			// A worker not started yet, as every normal start has: not
			// an error.
			if c.cfg.verbose {
				c.logf(false, "worker %d: %s (not heard from yet: starting)", w.idx, r.Err)
			}
			break
		}
		p.errs++
		p.lastErr = r.Err
		if c.cfg.verbose {
			c.logf(false, "worker %d: %s", w.idx, r.Err)
		}
	}
	c.advance()
	c.poke()
}

func (c *cluster) onExit(w *worker, p *proc, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.exitErr = err
	close(p.exited)
	if w.proc != p || c.closed {
		return
	}
	switch {
	case p.expect == "kill":
		w.state = stKilled
	case p.expect == "term" && err == nil:
		w.state = stStopped
		c.logf(false, "worker %d stopped", w.idx)
	default:
		w.state = stExited
		c.logf(true, "worker %d exited unexpectedly: %v", w.idx, exitText(err))
	}
	if p.member {
		p.member = false
		id := c.fault(fmt.Sprintf("exit %d", w.idx))
		now := time.Now().UnixNano()
		c.tl.add(tlEvent{ts: now, kind: tlLeave, who: inc{w.idx, p.gen}, fault: id})
		c.keysFault(now)
	}
	c.advance()
	c.poke()
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// watermark is the instant up to which every worker's reports have
// arrived: each worker's lines are in time order, so only workers that
// can still write (stdout open, not paused) hold it back.
func (c *cluster) watermark() int64 {
	wm := time.Now().UnixNano()
	for _, w := range c.workers {
		if p := w.proc; p != nil && p.open && w.state != stPaused {
			wm = min(wm, p.lastTS)
		}
	}
	return wm
}

// advance runs the live analyzer and logs what it found; c.mu is held.
func (c *cluster) advance() {
	for _, f := range c.live.advance(c.watermark()) {
		c.logFinding(f)
	}
	if c.cfg.balance {
		c.watchKeys(time.Now().UnixNano())
	}
}

func (c *cluster) name(who inc) string { return "w" + strconv.Itoa(who.w) }

func (c *cluster) logFinding(f finding) {
	switch f.kind {
	case fFault:
		desc := c.faults[f.fault]
		delete(c.faults, f.fault)
		what := "master now " + c.name(f.master)
		if f.known && f.from == f.master {
			what = "master still " + c.name(f.master)
		}
		at := time.Unix(0, f.ts).Add(-f.took) // when the fault happened
		c.logAt(at, f.multi > 0, "%s → %s after %s%s", desc, what, ms(f.took), overlapText(f.none, f.multi))
	case fEpisode:
		c.logAt(time.Unix(0, f.ts), true, "⚠ %s", episodeText(f, c.name))
	case fChange:
		c.logAt(time.Unix(0, f.ts), true, "⚠ master changed %s → %s with no fault", c.name(f.from), c.name(f.master))
	}
}

func episodeText(f finding, name func(inc) string) string {
	var parts []string
	if f.multi > 0 {
		var ws []string
		for _, m := range f.masters {
			ws = append(ws, name(m))
		}
		parts = append(parts, fmt.Sprintf("two masters (%s) for %s", strings.Join(ws, ", "), ms(f.multi)))
	}
	if f.none > 0 {
		parts = append(parts, "no master for "+ms(f.none))
	}
	if len(parts) == 0 {
		return "masters disagreed for " + ms(f.took)
	}
	return strings.Join(parts, ", ")
}

func overlapText(none, multi time.Duration) string {
	var parts []string
	if multi > 0 {
		parts = append(parts, "⚠ two masters for "+ms(multi))
	}
	if none > 0 {
		parts = append(parts, "no master for "+ms(none))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// tick lets the live analyzer move on when nothing arrives.
func (c *cluster) tick() {
	c.mu.Lock()
	c.advance()
	c.mu.Unlock()
}

// running returns the workers that count: running, not paused.
func (c *cluster) running() []*worker {
	var out []*worker
	for _, w := range c.workers {
		if w.state == stRunning && w.proc.member {
			out = append(out, w)
		}
	}
	return out
}

// keyUp is a worker's report that it became master of a key.
type keyUp struct {
	ts     int64 // the worker's clock, Unix ns
	key    string
	worker int
}

// memberMaster returns a running member (-voters) that is master of a
// key another running member holds too, and that key; -1 if none.
func (c *cluster) memberMaster() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	run := c.running()
	for _, w := range run {
		if w.idx < c.cfg.voters {
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(w.proc.rep.Keys)) {
			if !w.proc.rep.Keys[k].Master {
				continue
			}
			for _, o := range run {
				if _, ok := o.proc.rep.Keys[k]; ok && o != w && o.idx >= c.cfg.voters {
					return w.idx, k
				}
			}
		}
	}
	return -1, ""
}

// keyUpAfter returns when, first after at, a worker other than not
// reported it became master of key; 0 if none did.
func (c *cluster) keyUpAfter(key string, at int64, not int) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first int64
	for _, u := range c.keyUps {
		if u.key == key && u.worker != not && u.ts > at && (first == 0 || u.ts < first) {
			first = u.ts
		}
	}
	return first
}

// oldestMember returns the index of the oldest running member (-voters),
// the master of the keys it holds; -1 if none runs.
func (c *cluster) oldestMember() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	best := -1
	for _, w := range c.running() {
		if w.idx >= c.cfg.voters && (best < 0 || older(w.proc, c.workers[best].proc)) {
			best = w.idx
		}
	}
	return best
}

// older orders workers as the election does.
func older(a, b *proc) bool {
	if a.rep.Start != b.rep.Start {
		return a.rep.Start < b.rep.Start
	}
	return a.rep.UID < b.rep.UID
}

// settled reports whether the cluster has settled since the instant
// since: no worker starting or stopping; every running worker reported
// after since; exactly one of them is master, the oldest, and all name it;
// each sees all the others; and the same holds for every key among the
// workers that hold it (in balance mode: every key has exactly one master
// among the running workers, and they all see the same masters). If not,
// why says what is missing.
func (c *cluster) settled(since int64) (master int, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.settledLocked(since)
}

func (c *cluster) settledLocked(since int64) (int, string) {
	for _, w := range c.workers {
		if w.state == stStarting || w.state == stStopping {
			return -1, fmt.Sprintf("worker %d is %s", w.idx, w.state)
		}
	}
	run := c.running()
	if len(run) == 0 {
		return -1, "no worker running"
	}
	for _, w := range run {
		if w.proc.rep.TS <= since {
			return -1, fmt.Sprintf("no report from worker %d yet", w.idx)
		}
	}
	oldest := func(ws []*worker) *worker {
		return slices.MinFunc(ws, func(a, b *worker) int {
			if older(a.proc, b.proc) {
				return -1
			}
			return 1
		})
	}
	// With -voters, the global master is the oldest voter; a voter sees
	// every other worker, a member the voters only.
	voters := run
	if c.cfg.voters > 0 {
		voters = slices.DeleteFunc(slices.Clone(run), func(w *worker) bool { return w.idx >= c.cfg.voters })
		if len(voters) == 0 {
			return -1, "no voter running"
		}
	}
	want := oldest(voters)
	var masters []string
	for _, w := range run {
		r := w.proc.rep
		if r.Master {
			masters = append(masters, "w"+strconv.Itoa(w.idx))
		}
		if r.Master != (w == want) {
			return -1, fmt.Sprintf("masters %v, want w%d", masters, want.idx)
		}
		if r.MasterUID != want.proc.rep.UID {
			return -1, fmt.Sprintf("worker %d names master %q, want %q", w.idx, r.MasterUID, want.proc.rep.UID)
		}
		peers := len(run) - 1
		if c.cfg.voters > 0 && w.idx >= c.cfg.voters {
			peers = len(voters)
		}
		if r.Peers != peers {
			return -1, fmt.Sprintf("worker %d sees %d peers, want %d", w.idx, r.Peers, peers)
		}
	}
	if c.cfg.balance {
		// Every worker holds every key: each must have exactly one
		// master among the running workers, seen alike by all.
		if s := c.spreadLocked(run, since); s.why != "" {
			return -1, "keys: " + s.why
		}
		return want.idx, ""
	}
	for _, k := range allKeys {
		var holders []*worker
		for _, w := range run {
			if slices.Contains(w.keys, k) {
				holders = append(holders, w)
			}
		}
		if len(holders) == 0 {
			continue
		}
		kw := oldest(holders)
		for _, w := range holders {
			kr, ok := w.proc.rep.Keys[k]
			if !ok || kr.Master != (w == kw) || kr.UID != kw.proc.rep.UID {
				return -1, fmt.Sprintf("key %s: worker %d says master=%v %q, want w%d", k, w.idx, kr.Master, kr.UID, kw.idx)
			}
		}
	}
	return want.idx, ""
}

// waitSettled polls until the cluster has settled since the instant
// since, or the bound passes.
func (c *cluster) waitSettled(ctx context.Context, since int64, bound time.Duration) (int, time.Duration, error) {
	deadline := time.Unix(0, since).Add(bound)
	for {
		c.tick()
		m, why := c.settled(since)
		if why == "" {
			return m, time.Since(time.Unix(0, since)), nil
		}
		if time.Now().After(deadline) {
			return -1, 0, fmt.Errorf("not settled within %v: %s", bound, why)
		}
		select {
		case <-ctx.Done():
			return -1, 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitReady polls until worker i has said hello, or fails.
func (c *cluster) waitReady(ctx context.Context, i int, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		c.mu.Lock()
		w := c.workers[i]
		st := w.state
		c.mu.Unlock()
		switch st {
		case stRunning:
			return nil
		case stStarting:
		default:
			return fmt.Errorf("worker %d is %s before it was ready", i, st)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("worker %d did not start within %v", i, bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitExit waits for worker i's process to end.
func (c *cluster) waitExit(ctx context.Context, i int, bound time.Duration) error {
	c.mu.Lock()
	p := c.workers[i].proc
	c.mu.Unlock()
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.exitErr
	case <-t.C:
		return fmt.Errorf("worker %d did not exit within %v", i, bound)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// window describes [from, to] from the timeline.
func (c *cluster) window(from, to int64) window {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tl.window(from, to)
}

// dump returns the timeline between two instants, relative to from: for
// looking into a slow failover.
func (c *cluster) dump(from, to int64) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	type line struct {
		ts   int64
		text string
	}
	var lines []line
	for _, d := range c.debugLines {
		if d.ts >= from && d.ts <= to {
			_, text, _ := strings.Cut(d.text, " ")
			lines = append(lines, line{d.ts, fmt.Sprintf("%+9.1f ms  w%d   log: %s", float64(d.ts-from)/1e6, d.w, text)})
		}
	}
	for _, e := range c.tl.ev {
		if e.ts < from || e.ts > to {
			continue
		}
		what := map[tlKind]string{tlJoin: "joins", tlLeave: "leaves", tlMark: "fault, no membership change"}[e.kind]
		if e.kind == tlChange {
			what = fmt.Sprintf("reports master=%v", e.master)
		}
		if e.fault > 0 {
			what += " (" + c.faultNames[e.fault] + ")"
		}
		lines = append(lines, line{e.ts, fmt.Sprintf("%+9.1f ms  w%d#%d %s", float64(e.ts-from)/1e6, e.who.w, e.who.gen, what)})
	}
	slices.SortStableFunc(lines, func(a, b line) int { return cmp.Compare(a.ts, b.ts) })
	var out []string
	for _, l := range lines {
		out = append(out, l.text)
	}
	return out
}

// master returns the worker that is master now, if exactly one running
// worker says so.
func (c *cluster) master() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := -1
	for _, w := range c.running() {
		if w.proc.rep.Master {
			if m >= 0 {
				return -1, false
			}
			m = w.idx
		}
	}
	return m, m >= 0
}

// close ends every worker: SIGTERM (and SIGCONT for a paused one), then
// SIGKILL for any still alive after a grace period. It waits for them all.
func (c *cluster) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var alive []*proc
	for _, w := range c.workers {
		p := w.proc
		if p == nil {
			continue
		}
		select {
		case <-p.exited:
			continue
		default:
		}
		alive = append(alive, p)
		syscall.Kill(p.pid, syscall.SIGTERM)
		syscall.Kill(p.pid, syscall.SIGCONT)
	}
	c.mu.Unlock()
	grace := time.NewTimer(2 * time.Second)
	defer grace.Stop()
	for _, p := range alive {
		select {
		case <-p.exited:
		case <-grace.C:
			for _, q := range alive {
				syscall.Kill(q.pid, syscall.SIGKILL)
			}
			<-p.exited
		}
	}
	for _, p := range alive {
		<-p.exited
	}
	close(c.spawnc)
	<-c.spawnd
}

// command writes one line to every running worker's standard input (see
// workerMain for the commands).
func (c *cluster) command(line string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.workers {
		if p := w.proc; p != nil && p.stdin != nil {
			io.WriteString(p.stdin, line+"\n")
		}
	}
}
