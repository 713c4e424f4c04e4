//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msc-go/msc"
)

// TestMain lets the test binary be a worker too: check starts workers by
// running its own executable, which here is the test binary.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(workerMain(os.Args[1:]))
	}
	if _, ok := os.LookupEnv("GORACE"); !ok {
		// Under -race, a worker would sleep a second on exit, by default,
		// before it lets check see a graceful stop complete.
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// Short intervals; a generous WaitTimeout so that a loaded machine
// running -race does not count live workers dead.
var fastFlags = []string{"-base-port", "0", "-interval", "50ms", "-wait", "300ms", "-report", "50ms"}

// syncBuffer is an output that a test reads while check writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls until the output matches re.
func (s *syncBuffer) waitFor(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := rx.FindStringSubmatch(s.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("output never matched %q:\n%s", re, s.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTour(t *testing.T) {
	var out syncBuffer
	args := append([]string{"-scenario", "tour", "-n", "4"}, fastFlags...)
	code := run(args, strings.NewReader(""), &out, &out)
	t.Logf("output:\n%s", out.String())
	if code != 0 {
		t.Fatalf("tour exited %d", code)
	}
	s := out.String()
	if !regexp.MustCompile(`(?m)^tour: ok — 7 steps on 4 workers; worst failover [0-9.]+ ms`).MatchString(s) {
		t.Fatal("no summary line")
	}
	for _, step := range []string{"converge", "kill master 0", "pause master 1", "continue 1", "stop master (SIGTERM) 1", "start 0 again", "start 1 again"} {
		if !strings.Contains(s, step) {
			t.Errorf("no step %q", step)
		}
	}
}

// TestTourVoters: the tour on 3 voters and 5 members; the member killed
// and started again as well as the voters.
func TestTourVoters(t *testing.T) {
	var out syncBuffer
	args := append([]string{"-scenario", "tour", "-n", "8", "-voters", "3"}, fastFlags...)
	code := run(args, strings.NewReader(""), &out, &out)
	t.Logf("output:\n%s", out.String())
	if code != 0 {
		t.Fatalf("tour exited %d", code)
	}
	s := out.String()
	if !regexp.MustCompile(`(?m)^tour: ok — 9 steps on 8 workers`).MatchString(s) {
		t.Fatal("no summary line")
	}
	for _, step := range []string{"kill master 0", "pause master 1", "kill member 3", "start 3 again"} {
		if !strings.Contains(s, step) {
			t.Errorf("no step %q", step)
		}
	}
}

// TestInteractive drives the interactive mode with piped commands: its
// output is then plain log lines.
func TestInteractive(t *testing.T) {
	var out syncBuffer
	in, cmds := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- run(append([]string{"-n", "3"}, fastFlags...), in, &out, &out) }()
	send := func(s string) {
		t.Helper()
		if _, err := io.WriteString(cmds, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	defer cmds.Close()

	out.waitFor(t, `start → master now w0 after`)
	send("k 0")
	out.waitFor(t, `kill 0 → master now w1 after [0-9.]+ ms`)
	send("k 0")
	out.waitFor(t, `cannot kill worker 0: it is killed`)
	send("frobnicate")
	out.waitFor(t, `unknown command "frobnicate"`)
	send("p 1")
	send("l")
	m := out.waitFor(t, `(?m)^\s+1\s+(\d+)\s+paused`)
	paused, _ := strconv.Atoi(m[1])
	send("q")
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("q did not end check:\n%s", out.String())
	}
	// Every worker was waited for, the paused one too.
	if err := syscall.Kill(paused, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("paused worker %d still there after quit: %v", paused, err)
	}
}

// TestStartErrorsNotCounted: a healthy cluster's errors column is 0 on
// every worker once it has started. Workers start one after another, so
// each first finds the later ones unreachable (4, 3, 2, 1, 0 of them on 5
// workers): a start, not an error.
func TestStartErrorsNotCounted(t *testing.T) {
	const n = 5
	var out syncBuffer
	in, cmds := io.Pipe()
	done := make(chan int, 1)
	go func() { done <- run(append([]string{"-n", strconv.Itoa(n)}, fastFlags...), in, &out, &out) }()
	defer func() {
		io.WriteString(cmds, "q\n")
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("q did not end check:\n%s", out.String())
		}
		cmds.Close()
	}()
	out.waitFor(t, `start → master now w0 after`)
	// A row: index, pid, "running", uid, marks, uptime, peers n-1/n-1,
	// errors last.
	row := regexp.MustCompile(fmt.Sprintf(`(?m)^\s+(\d+)\s+\d+\s+running\s.*\s%d/%d\s+(\d+)$`, n-1, n-1))
	deadline := time.Now().Add(20 * time.Second)
	for {
		mark := len(out.String())
		if _, err := io.WriteString(cmds, "l\n"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		rows := row.FindAllStringSubmatch(out.String()[mark:], -1)
		if len(rows) == n {
			for _, r := range rows {
				if r[2] != "0" {
					t.Fatalf("worker %s: %s errors on a healthy start:\n%s", r[1], r[2], out.String())
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never %d workers running with %d/%d peers:\n%s", n, n-1, n-1, out.String())
		}
	}
}

// TestStartupError: an unreachable server is a start's while no process
// of that worker is known and gone, and an outage once one is.
func TestStartupError(t *testing.T) {
	unreachable := &msc.PeerError{Peer: "1", Err: fmt.Errorf("%w: connection refused", msc.ErrUnreachable)}
	for _, c := range []struct {
		name  string
		err   error
		peers []msc.PeerStatus
		want  bool
	}{
		{"not heard from yet", unreachable, nil, true},
		{"another worker gone", unreachable, []msc.PeerStatus{{UID: "w10-7"}, {UID: "w2-8"}}, true},
		{"heard from since the dial", unreachable, []msc.PeerStatus{{UID: "w1-7", Live: true}}, true},
		{"gone", unreachable, []msc.PeerStatus{{UID: "w1-7"}}, false},
		{"gone, restarted", unreachable, []msc.PeerStatus{{UID: "w1-7"}, {UID: "w1-9", Live: true}}, false},
		{"a voter gone", unreachable, []msc.PeerStatus{{UID: "w1"}}, false},
		{"another error", &msc.PeerError{Peer: "1", Err: msc.ErrAuth}, nil, false},
	} {
		if got := startupError(c.err, c.peers); got != c.want {
			t.Errorf("%s: startupError = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWorkerKeys(t *testing.T) {
	got := fmt.Sprint(workerKeys(0), workerKeys(1), workerKeys(2), workerKeys(3))
	if got != "[1 2] [1 3] [2 3] [1 2]" {
		t.Fatalf("keys %s", got)
	}
}

func TestWindow(t *testing.T) {
	a, b, c := inc{0, 1}, inc{1, 1}, inc{2, 1}
	var tl timeline
	for _, e := range []tlEvent{
		{ts: 0, kind: tlJoin, who: a},
		{ts: 0, kind: tlJoin, who: b},
		{ts: 0, kind: tlJoin, who: c},
		{ts: 10, kind: tlChange, who: a, master: true},
		{ts: 100, kind: tlLeave, who: a, fault: 1},      // a is killed
		{ts: 104, kind: tlChange, who: b, master: true}, // b takes over
		{ts: 200, kind: tlChange, who: c, master: true}, // c too, by mistake
		{ts: 203, kind: tlChange, who: c, master: false},
	} {
		tl.add(e)
	}
	w := tl.window(100, 300) // the final stretch of one master begins after the blip
	if w.Last != 203 || w.LastMaster != b || w.None != 4 || w.Multi != 3 || w.Changes != 3 {
		t.Fatalf("window %+v", w)
	}
	if w := tl.window(50, 90); w.Last != 50 || w.LastMaster != a || w.None != 0 {
		t.Fatalf("steady window %+v", w)
	}
	if w := tl.window(201, 202); w.Last != -1 || w.Multi != 1 {
		t.Fatalf("window ending with two masters %+v", w)
	}
}

func TestLiveAnalyzer(t *testing.T) {
	a, b, c := inc{0, 1}, inc{1, 1}, inc{2, 1}
	var tl timeline
	la := newLiveAnalyzer(&tl, 0, 50)
	add := func(evs ...tlEvent) {
		for _, e := range evs {
			tl.add(e)
		}
	}
	add(tlEvent{ts: 0, kind: tlJoin, who: a, fault: 1}, tlEvent{ts: 0, kind: tlJoin, who: b},
		tlEvent{ts: 0, kind: tlJoin, who: c}, tlEvent{ts: 5, kind: tlChange, who: a, master: true})
	f := la.advance(100)
	if len(f) != 1 || f[0].kind != fFault || f[0].took != 5 || f[0].master != a {
		t.Fatalf("start: %+v", f)
	}
	// A blip: b is master too for 3ns, then not; a stays.
	add(tlEvent{ts: 200, kind: tlChange, who: b, master: true}, tlEvent{ts: 203, kind: tlChange, who: b, master: false})
	f = la.advance(300)
	if len(f) != 1 || f[0].kind != fEpisode || f[0].multi != 3 {
		t.Fatalf("blip: %+v", f)
	}
	// a is killed; b flips twice before it holds: the failover ends
	// when its last stretch began.
	add(tlEvent{ts: 400, kind: tlLeave, who: a, fault: 2}, tlEvent{ts: 402, kind: tlChange, who: c, master: true},
		tlEvent{ts: 404, kind: tlChange, who: c, master: false}, tlEvent{ts: 410, kind: tlChange, who: b, master: true})
	if f = la.advance(440); len(f) != 0 {
		t.Fatalf("confirmed before the hold time: %+v", f)
	}
	f = la.advance(500)
	if len(f) != 1 || f[0].kind != fFault || f[0].fault != 2 || f[0].took != 10 || f[0].master != b || f[0].none != 8 {
		t.Fatalf("kill: %+v", f)
	}
	// Killing c, not the master, changes nothing: resolved at once.
	add(tlEvent{ts: 550, kind: tlLeave, who: c, fault: 3})
	f = la.advance(551)
	if len(f) != 1 || f[0].kind != fFault || f[0].fault != 3 || f[0].took != 0 || f[0].master != b || f[0].from != b {
		t.Fatalf("kill of a non-master: %+v", f)
	}
	add(tlEvent{ts: 560, kind: tlJoin, who: c})
	// b loses mastership to c with no fault.
	add(tlEvent{ts: 600, kind: tlChange, who: b, master: false}, tlEvent{ts: 601, kind: tlChange, who: c, master: true})
	f = la.advance(700)
	if len(f) != 2 || f[0].kind != fEpisode || f[1].kind != fChange || f[1].from != b || f[1].master != c {
		t.Fatalf("change: %+v", f)
	}
	// a comes back (a SIGCONT) and takes over in the next few ns: part
	// of that fault, not a change with no fault. It counts as master only
	// from its first report after it joined.
	add(tlEvent{ts: 800, kind: tlJoin, who: a, fault: 4}, tlEvent{ts: 803, kind: tlChange, who: c, master: false},
		tlEvent{ts: 804, kind: tlChange, who: a, master: true})
	f = la.advance(900)
	if len(f) != 1 || f[0].kind != fFault || f[0].fault != 4 || f[0].master != a || f[0].took != 4 || f[0].none != 1 || f[0].multi != 0 {
		t.Fatalf("resume: %+v", f)
	}
}

func TestFitANSI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc" + escReset},
		{escGreen + "★★" + escReset + "xyz", 3, escGreen + "★★" + escReset + "x" + escReset},
		{escGreen + "ab" + escReset, 2, escGreen + "ab" + escReset},
	} {
		if got := fitANSI(tc.in, tc.n); got != tc.want {
			t.Errorf("fitANSI(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// TestTourBalance runs the tour in balance mode: after every step, each
// of the keys must have exactly one master among the running workers.
func TestTourBalance(t *testing.T) {
	const keys = 60
	var out syncBuffer
	// A longer WaitTimeout than fastFlags': each step, converge included
	// (the workers' start), must settle within 10*wait+2s.
	args := append([]string{"-scenario", "tour", "-n", "3", "-balance", "-keys", strconv.Itoa(keys)}, fastFlags...)
	args = append(args, "-wait", "500ms")
	code := run(args, strings.NewReader(""), &out, &out)
	t.Logf("output:\n%s", out.String())
	if code != 0 {
		t.Fatalf("tour exited %d", code)
	}
	s := out.String()
	if !regexp.MustCompile(`(?m)^tour: ok — 7 steps on 3 workers`).MatchString(s) {
		t.Fatal("no summary line")
	}
	rx := regexp.MustCompile(`(?m)^\s+keys: (.*) = (\d+) of (\d+) keys mastered \(min (\d+), max (\d+)\), one master each, every worker agrees$`)
	steps := rx.FindAllStringSubmatch(s, -1)
	// Running workers after each step: converge, kill 0, pause 1,
	// continue 1, stop 1, start 0, start 1.
	running := []int{3, 2, 1, 2, 1, 2, 3}
	if len(steps) != len(running) {
		t.Fatalf("%d key lines, want one per step (%d)", len(steps), len(running))
	}
	for i, m := range steps {
		total, _ := strconv.Atoi(m[2])
		want, _ := strconv.Atoi(m[3])
		if total != keys || want != keys {
			t.Errorf("step %d: %s of %s keys mastered, want %d", i+1, m[2], m[3], keys)
		}
		counts := strings.Split(m[1], " · ")
		if len(counts) != running[i] {
			t.Errorf("step %d: counts %q for %d workers, want %d", i+1, m[1], len(counts), running[i])
		}
		sum := 0
		for _, c := range counts {
			var w, n int
			if _, err := fmt.Sscanf(c, "w%d %d", &w, &n); err != nil {
				t.Fatalf("step %d: bad count %q", i+1, c)
			}
			sum += n
		}
		if sum != keys {
			t.Errorf("step %d: the counts %q add up to %d, want %d", i+1, m[1], sum, keys)
		}
	}
}

// TestInteractiveBalance kills a worker in balance mode: the event log
// shows the keys settled again over the two workers left.
func TestInteractiveBalance(t *testing.T) {
	var out syncBuffer
	in, cmds := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(append([]string{"-n", "3", "-balance", "-keys", "40"}, fastFlags...), in, &out, &out)
	}()
	defer cmds.Close()
	out.waitFor(t, `keys ✓ after [0-9.]+ ms: w0 \d+ · w1 \d+ · w2 \d+ = 40 of 40 keys mastered`)
	if _, err := io.WriteString(cmds, "k 1\n"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, `kill 1 → master still w0`)
	out.waitFor(t, `keys ✓ after [0-9.]+ ms: w0 \d+ · w2 \d+ = 40 of 40 keys mastered \(min \d+, max \d+\), one master each`)
	if _, err := io.WriteString(cmds, "q\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("q did not end check:\n%s", out.String())
	}
}

func TestBalanceKeys(t *testing.T) {
	if got := fmt.Sprint(balanceKeys(3)); got != "[q-000 q-001 q-002]" {
		t.Fatalf("keys %s", got)
	}
	if got := balanceKeys(1001)[1000]; got != "q-1000" {
		t.Fatalf("key 1000 is %q", got)
	}
}

// TestSpread checks the sums workers report in balance mode: the total
// alone misses a key mastered twice while another has no master.
func TestSpread(t *testing.T) {
	keys := balanceKeys(4)
	c := &cluster{cfg: &config{balance: true, keys: len(keys)}, wantSum: sumHashes(keys)}
	// mk returns a running worker that masters the keys at the indexes
	// mine and sees the masters view (a UID per key).
	mk := func(idx int, mine []int, view []string) *worker {
		var st []msc.KeyStatus
		for i, k := range keys {
			st = append(st, msc.KeyStatus{Key: k, IsMaster: slices.Contains(mine, i), Master: view[i]})
		}
		r := report{TS: 10, Ready: true, Peers: 1}
		r.addBalance(st)
		return &worker{idx: idx, state: stRunning, proc: &proc{member: true, rep: r}}
	}
	view := []string{"a", "a", "b", "b"}
	for _, tc := range []struct {
		name string
		run  []*worker
		want string
	}{
		{"settled", []*worker{mk(0, []int{0, 1}, view), mk(1, []int{2, 3}, view)}, ""},
		{"one without master", []*worker{mk(0, []int{0, 1}, view), mk(1, []int{2}, view)}, "3 keys mastered, want 4"},
		{"two masters, one none", []*worker{mk(0, []int{0, 1}, view), mk(1, []int{1, 3}, view)}, "some key has two masters, another none"},
		{"views differ", []*worker{mk(0, []int{0, 1}, view), mk(1, []int{2, 3}, []string{"a", "a", "b", "a"})}, "workers 0 and 1 see different masters"},
	} {
		s := c.spreadLocked(tc.run, 0)
		if s.why != tc.want {
			t.Errorf("%s: why %q, want %q", tc.name, s.why, tc.want)
		}
		if tc.name == "settled" && (s.total != 4 || s.min != 2 || s.max != 2 || s.countsText() != "w0 2 · w1 2") {
			t.Errorf("settled: spread %+v", s)
		}
	}
	w := mk(0, []int{0, 1, 2, 3}, []string{"a", "a", "a", "a"})
	if s := c.spreadLocked([]*worker{w}, 10); s.why != "no report from worker 0 yet" {
		t.Errorf("old report: why %q", s.why)
	}
	w.proc.rep.Peers = 2
	if s := c.spreadLocked([]*worker{w}, 0); s.why != "worker 0 sees 2 peers, want 0" {
		t.Errorf("peers: why %q", s.why)
	}
}

// TestBenchVoters: the bench on 3 voters and 3 members measures, besides
// the master voter's faults, a member's crash: until another member says
// it is master of the key the dead one mastered. The median is within
// WaitTimeout/2 (the voters see the connections close at once; a few
// milliseconds on an idle machine), none past 2·WaitTimeout.
func TestBenchVoters(t *testing.T) {
	var out syncBuffer
	args := append([]string{"-bench", "-sizes", "6", "-voters", "3", "-reps", "3", "-steady", "200ms"}, fastFlags...)
	code := run(args, strings.NewReader(""), &out, &out)
	t.Logf("output:\n%s", out.String())
	if code != 0 {
		t.Fatalf("bench exited %d", code)
	}
	m := regexp.MustCompile(`(?m)^  6  key crash +3 +([0-9.]+) ms +[0-9.]+ ms +([0-9.]+) ms +- +-$`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("no key crash row")
	}
	if median, _ := strconv.ParseFloat(m[1], 64); median > 150 {
		t.Errorf("a member's key failed over in %s ms (median), want within WaitTimeout/2 (150 ms)", m[1])
	}
	if max, _ := strconv.ParseFloat(m[2], 64); max > 600 {
		t.Errorf("a member's key failed over in %s ms at most, want within 2·WaitTimeout (600 ms)", m[2])
	}
}

// TestStepDownDated: a worker's report that it stepped down as global
// master is dated by the step-down itself (testhook.SteppedDown), not
// by when the report was written (later, as an OnChange callback on a
// loaded machine may run), and check's timeline takes that date.
func TestStepDownDated(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, err := msc.New(msc.Options{UID: "alone", Listener: ln, Key: demoKey, Algorithm: "aes128"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	r := &reporter{enc: json.NewEncoder(&buf), m: m}
	report := func(ch msc.Change, from, to int64) report {
		t.Helper()
		for time.Now().UnixNano() <= to {
			time.Sleep(time.Millisecond) // the report comes strictly later
		}
		r.write("change", &ch, nil)
		var rep report
		if err := json.Unmarshal(buf.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		buf.Reset()
		if rep.Master != ch.IsMaster {
			t.Fatalf("reported master=%v, want %v", rep.Master, ch.IsMaster)
		}
		if rep.At < from || rep.At > to || rep.At >= rep.TS {
			t.Fatalf("master=%v dated %d, want in [%d, %d], before ts %d", ch.IsMaster, rep.At, from, to, rep.TS)
		}
		if got := rep.changedAt(); got != rep.At {
			t.Fatalf("changedAt %d, want %d", got, rep.At)
		}
		return rep
	}
	if err := m.Start(); err != nil { // no servers: master at once
		t.Fatal(err)
	}
	r.write("status", nil, nil)
	buf.Reset()
	before := time.Now().UnixNano()
	m.Stop()
	rep := report(msc.Change{}, before, time.Now().UnixNano())
	// Never before a report that read the state before the change: that
	// mastership was seen (here, as if a report had read master after
	// the step-down).
	r.lastMaster = rep.At + 1
	r.write("change", &msc.Change{}, nil)
	var again struct{ At, TS int64 }
	if err := json.Unmarshal(buf.Bytes(), &again); err != nil {
		t.Fatal(err)
	}
	if again.At != 0 {
		t.Fatalf("dated %d, before a report that read master at %d", again.At, r.lastMaster)
	}
}

// TestChangeReportTimeline: check's timeline takes a worker's change of
// the global mastership as what IsMaster answered when the report was
// written (a callback queued before a SIGSTOP runs after the SIGCONT,
// stale), at the step-down's own date when the report gives one.
func TestChangeReportTimeline(t *testing.T) {
	c := newCluster(&config{wait: 300 * time.Millisecond}, []int{0, 0})
	a, b := c.workers[0], c.workers[1]
	pa, pb := &proc{gen: 1}, &proc{gen: 1}
	a.proc, b.proc = pa, pb
	c.tl.add(tlEvent{ts: 0, kind: tlJoin, who: inc{0, 1}})
	c.tl.add(tlEvent{ts: 0, kind: tlJoin, who: inc{1, 1}})
	c.onReport(a, pa, report{Type: "change", TS: 10, Master: true, Change: &changeReport{IsMaster: true}})
	// b takes over at 100; a reports its step-down at 130, dated 90.
	c.onReport(b, pb, report{Type: "change", TS: 100, Master: true, Change: &changeReport{IsMaster: true}})
	c.onReport(a, pa, report{Type: "change", TS: 130, At: 90, Change: &changeReport{}})
	// A stale callback: the change said master, IsMaster answered false.
	c.onReport(a, pa, report{Type: "change", TS: 200, Change: &changeReport{IsMaster: true}})
	if w := c.tl.window(50, 300); w.Multi != 0 || w.LastMaster != (inc{1, 1}) {
		t.Fatalf("window %+v: two masters counted, or not b", w)
	}
	if w := c.tl.window(20, 95); w.None != 5 || w.Multi != 0 {
		t.Fatalf("window %+v: want 5 ns without a master (90 to 95), none with two", w)
	}
}
