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

// resumeEnv, set to "uid startNanos quorum", makes TestResumeWorker run a
// worker process of TestResumedMasterProcesses.
const resumeEnv = "MSC_RESUME_WORKER"

// resumePauses are the pauses of one mode, one per resume; 0 resumes as
// soon as another worker is master, when a stale answer is likeliest.
var resumePauses = []time.Duration{0, 400 * time.Millisecond, 0, time.Second}

// TestResumeWorker is not a test: it returns at once unless resumeEnv is
// set, and then runs a worker and exits.
func TestResumeWorker(t *testing.T) {
	if os.Getenv(resumeEnv) != "" {
		os.Exit(resumeWorker())
	}
}

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
	_, err := fmt.Sscan(os.Getenv(resumeEnv), &uid, &start, &quorum)
	check(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	m, err := msc.New(msc.Options{Key: "resume test key", UID: uid, Listener: ln,
		StartTime: time.Unix(0, start), Interval: 100 * time.Millisecond, Quorum: quorum})
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
// before), and "gap <answer> <t0> <t1> <p1>" for the first poll after a
// gap of more than 50ms since the end p1 of the poll before: a pause.
func pollMaster(ctx context.Context, m *msc.Msc, say func(string, ...any)) {
	var was bool
	p0, p1 := wall(), wall()
	for {
		last := ctx.Err() != nil
		t0 := wall()
		v := m.IsMaster()
		t1 := wall()
		if t0-p1 > int64(50*time.Millisecond) {
			say("gap %t %d %d %d", v, t0, t1, p1)
		}
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
// poll's start (poll) or end (gap), n the term (write, change) or the
// priority.
type resumeEvent struct {
	w, kind, who string
	v            bool
	t, t1, p, n  int64
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
		var x [4]int64
		for i := range x {
			x[i], _ = strconv.ParseInt(f[i+1], 10, 64)
		}
		switch e.kind {
		case "poll", "gap":
			e.t, e.t1, e.p = x[1], x[2], x[3]
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

// startResumeProcs starts three workers, w0 the oldest, tells each the
// others' addresses, and kills them when the test ends.
func startResumeProcs(t *testing.T, quorum int) []*resumeProc {
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
		p.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=w%d %d %d", resumeEnv, i, base+int64(i)*1e6, quorum))
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

// resumeCycle is one pause: of which worker, which one was master
// meanwhile, and when (wall clock) the SIGSTOP, the SIGCONT and the
// settling after it were.
type resumeCycle struct {
	paused, next    int
	stop, cont, end int64
}

// TestResumedMasterProcesses pauses the master of three worker processes
// until another is master, resumes it, and checks from the workers' lines
// that it answered IsMaster true at no instant when another worker did,
// and that its RunAsMaster function wrote nothing after the SIGCONT in its
// old term or while another was master.
func TestResumedMasterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes and pauses")
	}
	for _, quorum := range []int{0, 2} {
		t.Run(fmt.Sprintf("Quorum=%d", quorum), func(t *testing.T) {
			procs := startResumeProcs(t, quorum)
			waitResume(t, "a first master", procs, wall(), func() bool { return len(resumeMasters(procs)) == 1 })
			var cycles []resumeCycle
			for i, pause := range resumePauses {
				cycles = append(cycles, pauseResume(t, procs, pause, quorum > 1, 10*(i+1)))
			}
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
			var badMaster, badWrite int
			for k, c := range cycles {
				master, writes, msg := judgeResume(procs, c)
				if msg != "" {
					t.Errorf("resume %d, of w%d after %v (w%d master meanwhile):%s", k, c.paused,
						time.Duration(c.cont-c.stop).Round(time.Millisecond), c.next, msg)
				}
				if master {
					badMaster++
				}
				if writes {
					badWrite++
				}
			}
			t.Logf("%d resumes: %d with IsMaster true beside another master, %d with writes after the SIGCONT",
				len(cycles), badMaster, badWrite)
		})
	}
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

// trueRuns returns the spans in which a worker certainly answered true:
// from the end of the first true poll of each run to the start of its last.
func trueRuns(evs []resumeEvent) [][2]int64 {
	var runs [][2]int64
	start := int64(-1)
	for _, e := range evs {
		switch {
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

// judgeResume checks one resume. master reports that the resumed worker
// answered IsMaster true while another was certainly master (at its first
// poll, or overlapping), writes that its RunAsMaster function wrote after
// the SIGCONT in its old term or while another was certainly master; msg
// tells what went wrong, with the lines around it, or is "".
func judgeResume(procs []*resumeProc, c resumeCycle) (master, writes bool, msg string) {
	runs := make([][][2]int64, len(procs))
	for i, p := range procs {
		p.mu.Lock()
		runs[i] = trueRuns(p.evs)
		p.mu.Unlock()
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
	var b strings.Builder
	var oldTerm int64
	back := c.end // the end of the resumed worker's first poll after the SIGCONT
	var bad []resumeEvent
	p := procs[c.paused]
	p.mu.Lock()
	for _, e := range p.evs {
		switch {
		case e.t < c.stop && (e.kind == "write" || e.kind == "change" && e.v):
			oldTerm = max(oldTerm, e.n)
		case e.t <= c.cont || e.t > c.end:
		case e.kind == "gap" && back == c.end:
			back = e.t1
			if w := other(e.t, e.t1); e.v && w >= 0 {
				fmt.Fprintf(&b, "\n  IsMaster true at its first poll after the SIGCONT, while w%d was master", w)
			}
		case e.kind == "write" && (e.n <= oldTerm || other(e.t, e.t) >= 0):
			bad = append(bad, e)
		}
	}
	p.mu.Unlock()
	var overlap int64
	for w := range procs {
		for _, r := range runs[c.paused] {
			for _, q := range runs[w] {
				if lo, hi := max(r[0], q[0], back), min(r[1], q[1], c.end); w != c.paused && hi > lo {
					overlap += hi - lo
				}
			}
		}
	}
	if overlap > 0 {
		fmt.Fprintf(&b, "\n  IsMaster true beside another master for %v after the SIGCONT", time.Duration(overlap))
	}
	if len(bad) > 0 {
		fmt.Fprintf(&b, "\n  RunAsMaster wrote %d times after the SIGCONT (term before the pause: %d)", len(bad), oldTerm)
	}
	if b.Len() == 0 {
		return false, false, ""
	}
	dump := dumpResume(procs, "the SIGCONT", c.cont, c.stop-int64(200*time.Millisecond), c.end, bad)
	return strings.Contains(b.String(), "IsMaster"), len(bad) > 0, b.String() + "\n" + dump
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
