//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
