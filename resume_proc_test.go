//go:build unix

package msc_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msc-go/msc"
)

// resumeEnv, set to "uid startNanos quorum intervalNanos waitNanos", makes
// TestResumeWorker run a worker process of TestResumedMasterProcesses.
const resumeEnv = "MSC_RESUME_WORKER"

// resumePauses are the pauses of one mode, one per resume; 0 resumes as
// soon as another worker is master, when a stale answer is likeliest.
var resumePauses = []time.Duration{0, 400 * time.Millisecond, 0, time.Second}

// The sweep's timing: short, so that pauses up to 20×WaitTimeout are
// cheap. sweepPauses are its pauses in WaitTimeouts, from one the others
// never elect in (W/2), through those around W−M/2 and W where the
// paused node's freshness and its peers' silence race, to 20×W.
const (
	sweepInterval = 20 * time.Millisecond
	sweepWait     = 60 * time.Millisecond
)

var sweepPauses = []float64{0.5, 0.75, 1, 1.25, 1.5, 2, 3, 5, 10, 20}

// TestResumeWorker is not a test: it returns at once unless resumeEnv is
// set, and then runs a worker and exits.
func TestResumeWorker(t *testing.T) {
	if os.Getenv(resumeEnv) != "" {
		os.Exit(resumeWorker())
	}
}

// resumeGap is the longest a worker's poller may not poll before its next
// poll is reported as one after a gap: shorter than any pause.
const resumeGap = 5 * time.Millisecond

// wall returns the wall clock in Unix nanoseconds, shared by the processes.
func wall() int64 { return time.Now().UnixNano() }

// resumeWorker runs one node. It prints "addr host:port", reads "peers
// uid=host:port ...", then obeys "prio N" and "quit" on stdin. It prints
// its IsMaster answers (pollMaster), each write of its RunAsMaster
// function ("write term t") and each global OnChange.
func resumeWorker() int {
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", a...)
	}
	check := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(2)
		}
	}
	var uid string
	var start int64
	var quorum int
	var interval, wait time.Duration
	_, err := fmt.Sscan(os.Getenv(resumeEnv), &uid, &start, &quorum, &interval, &wait)
	check(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	m, err := msc.New(msc.Options{Key: "resume test key", UID: uid, Listener: ln,
		StartTime: time.Unix(0, start), Interval: interval, WaitTimeout: wait, Quorum: quorum})
	check(err)
	say("addr %s", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		check(io.ErrUnexpectedEOF)
	}
	for _, p := range strings.Fields(in.Text())[1:] {
		id, addr, _ := strings.Cut(p, "=")
		_, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		check(m.AddServer(id, msc.ServerConfig{Port: n}))
	}
	m.OnChange(func(c msc.Change) {
		if c.Key == "" {
			say("change %t %q %d %d", c.IsMaster, c.Master, c.Term, wall())
		}
	})
	check(m.Start())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		m.RunAsMaster(ctx, func(ctx context.Context, term uint64) {
			for {
				t := wall() // before the check: a write stamped after the SIGCONT was checked after it
				if ctx.Err() != nil {
					return
				}
				say("write %d %d", term, t)
				time.Sleep(200 * time.Microsecond)
			}
		})
	}()
	go func() { defer wg.Done(); pollMaster(ctx, m, say) }()
	for in.Scan() && in.Text() != "quit" {
		if n, err := strconv.Atoi(strings.TrimPrefix(in.Text(), "prio ")); err == nil {
			m.SetPriority(n)
			say("prio %d %d", n, wall())
		}
	}
	m.Stop()
	cancel()
	wg.Wait()
	return 0
}

// pollMaster polls m.IsMaster every 200µs until ctx is done, then once
// more. It prints "poll <answer> <t0> <t1> <p0>" when the answer changes
// (t0, t1: the start and end of the poll, p0: the start of the one
// before), and "gap <answer> <t0> <t1> <p1> <p0>" for the first poll
// after a gap of more than resumeGap since the end p1 of the poll before:
// a pause, or the poller starved (what the answer was meanwhile is not
// known). A poll that itself took more than resumeGap (the pause fell
// inside it, and its answer may be from before) makes the next poll the
// one after the gap.
func pollMaster(ctx context.Context, m *msc.Msc, say func(string, ...any)) {
	gap := int64(resumeGap)
	var was, straddled bool
	p0, p1 := wall(), wall()
	for {
		last := ctx.Err() != nil
		t0 := wall()
		v := m.IsMaster()
		t1 := wall()
		if t0-p1 > gap || straddled {
			say("gap %t %d %d %d %d", v, t0, t1, p1, p0)
		}
		straddled = t1-t0 > gap
		if v != was {
			say("poll %t %d %d %d", v, t0, t1, p0)
			was = v
		}
		if p0, p1 = t0, t1; last {
			return
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// resumeEvent is a line of worker w: kind is poll, gap, write, change or
// prio; t is its stamp (a poll's start), t1 a poll's end, p the previous
// poll's start (poll) or end (gap), q its start (gap), n the term (write,
// change) or the priority.
type resumeEvent struct {
	w, kind, who   string
	v              bool
	t, t1, p, q, n int64
}

// describe tells what the event is, its times in ms from zero.
func (e resumeEvent) describe(zero int64) string {
	ms := func(t int64) string { return fmt.Sprintf("%+.3f", float64(t-zero)/1e6) }
	s := map[string]string{
		"poll":   fmt.Sprintf("IsMaster now %t (poll ended %s; poll before began %s)", e.v, ms(e.t1), ms(e.p)),
		"gap":    fmt.Sprintf("first poll after a gap from %s: IsMaster %t", ms(e.p), e.v),
		"write":  fmt.Sprintf("write, term %d", e.n),
		"change": fmt.Sprintf("OnChange IsMaster=%t master=%q term %d", e.v, e.who, e.n),
		"prio":   fmt.Sprintf("SetPriority(%d)", e.n),
	}[e.kind]
	if e.kind == "write" {
		s += "   <- after the SIGCONT"
	}
	return fmt.Sprintf("%10s  %s %s", ms(e.t), e.w, s)
}

// resumeProc is a worker process and what it printed.
type resumeProc struct {
	cmd   *exec.Cmd
	stdin io.Writer
	done  chan struct{} // closed when its stdout ends

	mu     sync.Mutex
	addr   string
	master bool             // the answer of its last poll line
	last   map[string]int64 // the newest stamp of each kind of line
	evs    []resumeEvent
}

// read parses the worker w's lines until its stdout ends.
func (p *resumeProc) read(w string, r io.Reader) {
	defer close(p.done)
	for sc := bufio.NewScanner(r); sc.Scan(); {
		f := append(strings.Fields(sc.Text()), "", "", "", "", "")
		e := resumeEvent{w: w, kind: f[0], v: f[1] == "true"}
		var x [5]int64
		for i := range x {
			x[i], _ = strconv.ParseInt(f[i+1], 10, 64)
		}
		switch e.kind {
		case "poll", "gap":
			e.t, e.t1, e.p, e.q = x[1], x[2], x[3], x[4]
		case "write", "prio":
			e.n, e.t = x[0], x[1]
		case "change":
			e.who, _ = strconv.Unquote(f[2])
			e.n, e.t = x[2], x[3]
		}
		p.mu.Lock()
		if e.kind == "addr" {
			p.addr = f[1]
		} else if e.t != 0 {
			p.evs = append(p.evs, e)
			p.last[e.kind] = max(p.last[e.kind], e.t)
			if e.kind == "poll" {
				p.master = e.v
			}
		}
		p.mu.Unlock()
	}
}

// since reports whether the worker printed a line of kind stamped after t.
func (p *resumeProc) since(kind string, t int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last[kind] > t
}

// startResumeProcs starts three workers, w0 the oldest, with the options
// given, tells each the others' addresses, and kills them when the test
// ends.
func startResumeProcs(t *testing.T, quorum int, interval, wait time.Duration) []*resumeProc {
	procs := make([]*resumeProc, 0, 3)
	t.Cleanup(func() {
		for _, p := range procs {
			p.cmd.Process.Signal(syscall.SIGCONT)
			p.cmd.Process.Kill()
			<-p.done
			p.cmd.Wait()
		}
	})
	base := time.Now().Add(-time.Hour).UnixNano()
	for i := range cap(procs) {
		p := &resumeProc{done: make(chan struct{}), last: map[string]int64{}}
		p.cmd = exec.Command(os.Args[0], "-test.run=^TestResumeWorker$")
		p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=w%d %d %d %d %d", resumeEnv, i, base+int64(i)*1e6, quorum, interval, wait))
		p.cmd.Stderr = os.Stderr
		var err error
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := p.cmd.StdoutPipe()
		if err == nil {
			err = p.cmd.Start()
		}
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		go p.read(fmt.Sprint("w", i), stdout)
	}
	waitResume(t, "workers listening", procs, wall(), func() bool {
		return !slices.ContainsFunc(procs, func(p *resumeProc) bool { p.mu.Lock(); defer p.mu.Unlock(); return p.addr == "" })
	})
	for i, p := range procs {
		line := "peers"
		for j, q := range procs {
			if j != i {
				line += fmt.Sprintf(" w%d=%s", j, q.addr)
			}
		}
		fmt.Fprintln(p.stdin, line)
	}
	return procs
}

// resumeMasters returns the workers whose last IsMaster answer was true.
func resumeMasters(procs []*resumeProc) []int {
	var ms []int
	for i, p := range procs {
		p.mu.Lock()
		if p.master {
			ms = append(ms, i)
		}
		p.mu.Unlock()
	}
	return ms
}

// waitResume polls cond every millisecond, and fails the test with the
// workers' lines since from if it does not hold within 10s.
func waitResume(t *testing.T, what string, procs []*resumeProc, from int64, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s; lines since:\n%s", what, dumpResume(procs, "then", from, from, wall(), nil))
		}
	}
}

// resumeCycle is one pause: of which worker, which one became master
// meanwhile (-1: none, or not known yet), when (wall clock) the SIGSTOP,
// the SIGCONT and the settling after it were, and how long after a
// heartbeat the SIGSTOP was (its phase in the Interval).
type resumeCycle struct {
	paused, next           int
	stop, cont, end, phase int64
}

// TestResumedMasterProcesses pauses the master of three worker processes
// with SIGSTOP, resumes it, and checks from the workers' lines (judgeResume)
// that its first IsMaster after the SIGCONT was false if another worker had
// become master meanwhile, that no two workers answered IsMaster true at
// one instant from the SIGSTOP on (the resumed one from its first poll
// after the SIGCONT), and that its RunAsMaster function, which checks
// ctx.Err() before each write, wrote nothing after the SIGCONT in its old
// term once another had become master, nor while another was master, nor
// after another wrote in a newer term; with and without Quorum.
//
// With Interval 100ms and WaitTimeout 300ms it pauses the master 60-95ms
// after a heartbeat until another is master, for at least resumePauses
// (with Quorum the new master is given the highest priority before the
// resume, so that the resumed one has no claim at all). The sweep, with
// Interval 20ms and WaitTimeout 60ms (W), pauses the master (the oldest,
// which takes mastership back) for each of sweepPauses, from W/2, which
// the others do not notice, to 20×W, each at another of 10 phases of the
// Interval after its heartbeat, the two modes half-way round from each
// other, and the pairing of pauses and phases starting at random each run.
func TestResumedMasterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes and pauses")
	}
	for _, quorum := range []int{0, 2} {
		t.Run(fmt.Sprintf("Quorum=%d", quorum), func(t *testing.T) {
			procs := startResumeProcs(t, quorum, 100*time.Millisecond, 300*time.Millisecond)
			waitResume(t, "a first master", procs, wall(), func() bool { return len(resumeMasters(procs)) == 1 })
			var cycles []resumeCycle
			for i, pause := range resumePauses {
				cycles = append(cycles, pauseResume(t, procs, pause, quorum > 1, 10*(i+1)))
			}
			judgeCycles(t, procs, cycles)
		})
	}
	n := len(sweepPauses)
	r := rand.IntN(n)
	for mode, quorum := range []int{0, 2} {
		t.Run(fmt.Sprintf("Sweep/Quorum=%d", quorum), func(t *testing.T) {
			procs := startResumeProcs(t, quorum, sweepInterval, sweepWait)
			waitResume(t, "w0 master", procs, wall(), func() bool { return slices.Equal(resumeMasters(procs), []int{0}) })
			var cycles []resumeCycle
			for i, x := range sweepPauses {
				k := (3*i + r + mode*n/2) % n // 3 is prime to n: each phase once per mode
				phase := sweepInterval * time.Duration(k) / time.Duration(n)
				cycles = append(cycles, sweepResume(t, procs, time.Duration(x*float64(sweepWait)), phase))
			}
			judgeCycles(t, procs, cycles)
		})
	}
}

// judgeCycles makes the workers quit, and judges each of their pauses.
func judgeCycles(t *testing.T, procs []*resumeProc, cycles []resumeCycle) {
	t.Helper()
	for _, p := range procs {
		fmt.Fprintln(p.stdin, "quit")
	}
	for i, p := range procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("worker w%d did not quit within 10s", i)
		}
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("worker w%d: %v", i, err)
		}
	}
	var badMaster, badWrite, meanwhile int
	for k, c := range cycles {
		v := judgeResume(procs, c)
		what := fmt.Sprintf("resume %d, of w%d after %v, stopped %v after a heartbeat", k, c.paused,
			time.Duration(c.cont-c.stop).Round(time.Millisecond), time.Duration(c.phase).Round(100*time.Microsecond))
		if v.next >= 0 {
			what += fmt.Sprintf(" (w%d master meanwhile)", v.next)
			meanwhile++
		} else {
			what += " (no other master meanwhile)"
		}
		if v.msg != "" {
			t.Errorf("%s:%s", what, v.msg)
		}
		t.Logf("%s: first IsMaster %t, %d writes after the SIGCONT, %d of them in the term from before", what, v.first, v.written, v.old)
		if v.master {
			badMaster++
		}
		if v.writes {
			badWrite++
		}
	}
	t.Logf("%d resumes, %d with another master meanwhile: %d with IsMaster true beside another master, %d with writes after the SIGCONT that should not be",
		len(cycles), meanwhile, badMaster, badWrite)
}

// pauseResume pauses the master, for at least pause and until another
// worker is master, then resumes it and waits until the cluster has
// settled again: the paused worker master again (the oldest), or, with
// quorum, the new master, given priority prio before the resume.
func pauseResume(t *testing.T, procs []*resumeProc, pause time.Duration, quorum bool, prio int) resumeCycle {
	t.Helper()
	m := resumeMasters(procs)[0]
	// Stop it 60-95ms after a heartbeat (they go out on multiples of
	// Interval of the wall clock): its view is then as old as can be when
	// the others have elected another master.
	phase := int64(60+rand.IntN(36)) * 1e6
	time.Sleep(time.Duration((phase - wall()%1e8 + 1e8) % 1e8))
	c := resumeCycle{paused: m, next: -1, stop: wall()}
	c.phase = c.stop % 1e8
	syscall.Kill(procs[m].cmd.Process.Pid, syscall.SIGSTOP)
	waitResume(t, "another master", procs, c.stop, func() bool {
		for _, w := range resumeMasters(procs) {
			if w != m {
				c.next = w
			}
		}
		return c.next >= 0
	})
	if d := time.Duration(wall() - c.stop); d < pause {
		time.Sleep(pause - d)
	}
	want := m
	if quorum {
		want = c.next
		fmt.Fprintf(procs[want].stdin, "prio %d\n", prio)
		waitResume(t, "SetPriority", procs, c.stop, func() bool { return procs[want].since("prio", c.stop) })
	}
	c.cont = wall()
	syscall.Kill(procs[m].cmd.Process.Pid, syscall.SIGCONT)
	waitResume(t, fmt.Sprintf("w%d alone master after the resume", want), procs, c.stop, func() bool {
		ms := resumeMasters(procs)
		return wall()-c.cont > int64(500*time.Millisecond) && len(ms) == 1 && ms[0] == want &&
			procs[m].since("gap", c.cont)
	})
	c.end = wall()
	return c
}

// sweepResume stops the master phase after a heartbeat (they go out on
// the multiples of the Interval of the wall clock), for pause whatever
// happens meanwhile, resumes it, and waits until it is again the only
// master (it is the oldest), and 3×WaitTimeout have passed since the
// resume.
func sweepResume(t *testing.T, procs []*resumeProc, pause, phase time.Duration) resumeCycle {
	t.Helper()
	m := resumeMasters(procs)[0]
	iv := int64(sweepInterval)
	time.Sleep(time.Duration((int64(phase) - wall()%iv + iv) % iv))
	c := resumeCycle{paused: m, next: -1, stop: wall()}
	c.phase = c.stop % iv
	syscall.Kill(procs[m].cmd.Process.Pid, syscall.SIGSTOP)
	time.Sleep(pause) // the fault itself: how long the process stays stopped
	c.cont = wall()
	syscall.Kill(procs[m].cmd.Process.Pid, syscall.SIGCONT)
	waitResume(t, fmt.Sprintf("w%d alone master after the resume", m), procs, c.stop, func() bool {
		return wall()-c.cont > int64(3*sweepWait) && slices.Equal(resumeMasters(procs), []int{m}) &&
			procs[m].since("gap", c.cont)
	})
	c.end = wall()
	return c
}

// trueRuns returns the spans in which a worker certainly answered true:
// from the end of the first true poll of each run to the start of its
// last. A gap between polls ends a run: the answer may have changed and
// changed back meanwhile.
func trueRuns(evs []resumeEvent) [][2]int64 {
	var runs [][2]int64
	start := int64(-1)
	for _, e := range evs {
		switch {
		case e.kind == "gap":
			if start >= 0 {
				runs = append(runs, [2]int64{start, max(start, e.q)})
			}
			start = -1
			if e.v {
				start = e.t1
			}
		case e.kind != "poll":
		case e.v:
			start = e.t1
		case start >= 0:
			runs = append(runs, [2]int64{start, max(start, e.p)})
			start = -1
		}
	}
	if start >= 0 {
		runs = append(runs, [2]int64{start, math.MaxInt64})
	}
	return runs
}

// resumeVerdict is what judgeResume found in one pause.
type resumeVerdict struct {
	next    int  // a worker that became master during the pause, or -1
	first   bool // the resumed worker's first IsMaster answer after the SIGCONT
	written int  // its function's writes after the SIGCONT, until the settling
	old     int  // those of them in its term from before the pause

	// master: it answered IsMaster true at its first poll after the
	// SIGCONT while another had become master meanwhile or was certainly
	// master, or two workers answered true at once; writes: its function
	// wrote when it should not have; msg tells what went wrong, with the
	// lines around it, or is "".
	master, writes bool
	msg            string
}

// judgeResume checks one pause, from the SIGSTOP to the settling after the
// SIGCONT.
func judgeResume(procs []*resumeProc, c resumeCycle) (v resumeVerdict) {
	evs := make([][]resumeEvent, len(procs))
	runs := make([][][2]int64, len(procs))
	firstWrite := map[int64]int64{} // the first write in each term by another worker since the SIGSTOP
	for i, p := range procs {
		p.mu.Lock()
		evs[i] = slices.Clone(p.evs)
		p.mu.Unlock()
		runs[i] = trueRuns(evs[i])
		for _, e := range evs[i] {
			if i != c.paused && e.kind == "write" && e.t > c.stop && e.t <= c.end {
				if f, ok := firstWrite[e.n]; !ok || e.t < f {
					firstWrite[e.n] = e.t
				}
			}
		}
	}
	other := func(a, b int64) int { // a worker but the paused one certainly master over [a, b], or -1
		for w := range procs {
			for _, r := range runs[w] {
				if w != c.paused && r[0] <= a && b <= r[1] {
					return w
				}
			}
		}
		return -1
	}
	became := func(a, b int64) int { // a worker but the paused one whose IsMaster turned true in (a, b], or -1
		for w := range procs {
			for _, r := range runs[w] {
				if w != c.paused && a < r[0] && r[0] <= b {
					return w
				}
			}
		}
		return -1
	}
	newer := func(term, at int64) bool { // another worker wrote in a newer term before at
		for n, t := range firstWrite {
			if n > term && t < at {
				return true
			}
		}
		return false
	}
	if v.next = c.next; v.next < 0 {
		v.next = became(c.stop, c.cont)
	}
	var oldTerm int64 // the resumed worker's term from before the pause
	for _, e := range evs[c.paused] {
		if e.t < c.stop && (e.kind == "write" || e.kind == "change" && e.v) {
			oldTerm = max(oldTerm, e.n)
		}
	}
	// handedBack reports whether a line stamped after the SIGCONT and
	// before at shows that the master elected meanwhile had stepped down
	// (its IsMaster false, or its OnChange), or that the resumed worker had
	// a new term (its OnChange): mastership was handed back before at, so a
	// true IsMaster at at is not the one from before the pause.
	handedBack := func(at int64) bool {
		for w := range procs {
			for _, e := range evs[w] {
				if e.t <= c.cont || e.t >= at {
					continue
				}
				if w == v.next && (e.kind == "poll" && !e.v && e.t1 < at || e.kind == "change" && !e.v) ||
					w == c.paused && e.kind == "change" && e.v && e.n > oldTerm {
					return true
				}
			}
		}
		return false
	}
	var b strings.Builder
	back := c.end // the end of the resumed worker's first poll after the SIGCONT
	var bad []resumeEvent
	for _, e := range evs[c.paused] {
		switch {
		case e.t <= c.cont || e.t > c.end:
		case e.kind == "gap" && back == c.end:
			back, v.first = e.t1, e.v
			if w := other(e.t, e.t1); e.v && w >= 0 {
				fmt.Fprintf(&b, "\n  IsMaster true at its first poll after the SIGCONT, while w%d was master", w)
			} else if e.v && v.next >= 0 && !handedBack(e.t) {
				fmt.Fprintf(&b, "\n  IsMaster true at its first poll after the SIGCONT, after w%d had become master meanwhile", v.next)
			}
		case e.kind != "write":
		default:
			v.written++
			if e.n <= oldTerm {
				v.old++
			}
			if e.n <= oldTerm && became(c.stop, e.t) >= 0 || other(e.t, e.t) >= 0 || newer(e.n, e.t) {
				bad = append(bad, e)
			}
		}
	}
	var overlap int64
	for w := range procs {
		for q := w + 1; q < len(procs); q++ {
			from := c.stop
			if w == c.paused || q == c.paused {
				from = back
			}
			for _, r := range runs[w] {
				for _, s := range runs[q] {
					if lo, hi := max(r[0], s[0], from), min(r[1], s[1], c.end); hi > lo {
						overlap += hi - lo
					}
				}
			}
		}
	}
	if overlap > 0 {
		fmt.Fprintf(&b, "\n  IsMaster true on two workers at once for %v (the resumed one from its first poll after the SIGCONT)", time.Duration(overlap))
	}
	if len(bad) > 0 {
		fmt.Fprintf(&b, "\n  RunAsMaster wrote %d times after the SIGCONT when it should not have (term before the pause: %d)", len(bad), oldTerm)
	}
	if b.Len() == 0 {
		return v
	}
	v.master, v.writes = strings.Contains(b.String(), "IsMaster"), len(bad) > 0
	v.msg = b.String() + "\n" + dumpResume(procs, "the SIGCONT", c.cont, c.stop-int64(200*time.Millisecond), c.end, bad)
	return v
}

// dumpResume formats the workers' lines stamped in [from, to], times in
// ms from zero (named what), leaving out the writes but the first 5 of
// extra.
func dumpResume(procs []*resumeProc, what string, zero, from, to int64, extra []resumeEvent) string {
	var evs []resumeEvent
	writes := 0
	for _, p := range procs {
		p.mu.Lock()
		for _, e := range p.evs {
			if e.t < from || e.t > to {
			} else if e.kind == "write" {
				writes++
			} else {
				evs = append(evs, e)
			}
		}
		p.mu.Unlock()
	}
	evs = append(evs, extra[:min(len(extra), 5)]...)
	slices.SortStableFunc(evs, func(a, b resumeEvent) int { return int(min(max(a.t-b.t, -1), 1)) })
	var b strings.Builder
	fmt.Fprintf(&b, "  (times in ms from %s; %d writes not shown)\n", what, writes-min(len(extra), 5))
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s\n", e.describe(zero))
	}
	return b.String()
}
