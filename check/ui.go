//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ANSI escape sequences.
const (
	escReset   = "\x1b[0m"
	escBold    = "\x1b[1m"
	escDim     = "\x1b[2m"
	escRed     = "\x1b[1;31m"
	escYellow  = "\x1b[33m"
	escGreen   = "\x1b[1;32m"
	escClear   = "\x1b[2J"
	escEOL     = "\x1b[K"
	escEOS     = "\x1b[J"
	escSave    = "\x1b7"
	escRestore = "\x1b8"
)

const helpLine = "k N kill · p N pause · c N continue · t N stop · s N start · l list · h help · q quit"

var helpText = []string{
	"commands (N is a worker number):",
	"  k N  kill (SIGKILL): its connections reset, peers re-elect at once",
	"  p N  pause (SIGSTOP): peers count it dead after WaitTimeout",
	"  c N  continue (SIGCONT) a paused worker",
	"  t N  stop gracefully (SIGTERM → Stop → exit 0): it tells its peers",
	"  s N  start a stopped or killed worker again (it is then the youngest)",
	"  l    list the workers   h  this help   q  quit (ends every worker)",
}

// ui draws the cluster: a table redrawn in place on a terminal, plain log
// lines otherwise.
type ui struct {
	c       *cluster
	out     io.Writer
	tty     bool
	rows    int
	cols    int
	history []logLine
	msg     string
	drawn   bool
	prompt  int // the prompt's row
	started time.Time
}

// interactive runs the cluster until q, the end of a terminal's input, or
// a signal.
func interactive(ctx context.Context, cfg *config, ports []int, stdin io.Reader, stdout io.Writer) int {
	c := newCluster(cfg, ports)
	defer c.close()
	u := &ui{c: c, out: stdout, tty: isTerminal(stdout), started: time.Now()}
	if !u.tty {
		fmt.Fprintf(stdout, "check: %s\n", u.title())
	}
	if err := startAll(ctx, c, "start"); err != nil {
		for _, l := range c.takeLogs() {
			fmt.Fprintln(stdout, l.at.Format("15:04:05.000"), l.text)
		}
		fmt.Fprintln(stdout, "check:", err)
		return 1
	}

	lines := make(chan string)
	inputDone := make(chan struct{})
	defer close(inputDone)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-inputDone:
				return
			}
		}
	}()
	stdinTTY := false
	if f, ok := stdin.(*os.File); ok {
		stdinTTY = isTerminal(f)
	}

	u.redraw()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			u.flush()
			u.bye("interrupted: ending every worker")
			return 130
		case <-tick.C:
			c.tick()
			u.redraw()
		case <-c.changed:
			if !u.tty {
				u.flush()
			}
		case line, ok := <-lines:
			if !ok {
				if stdinTTY {
					u.bye("end of input: ending every worker")
					return 0
				}
				lines = nil // piped input ended: run until a signal
				continue
			}
			if u.command(line) {
				u.flush()
				u.bye("quit: ending every worker")
				return 0
			}
			u.promptAgain()
			u.redraw()
		}
	}
}

// startAll starts every worker in turn, each once the one before it is
// up, so that they start in order of age.
func startAll(ctx context.Context, c *cluster, desc string) error {
	for i := range c.workers {
		d := ""
		if i == 0 {
			d = desc
		}
		if _, _, err := c.start(i, d); err != nil {
			return err
		}
		if err := c.waitReady(ctx, i, 10*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// command runs one command line and reports whether it asks to quit.
func (u *ui) command(line string) bool {
	f := strings.Fields(line)
	if len(f) == 0 {
		u.say("")
		return false
	}
	ops := map[string]string{"k": opKill, "p": opPause, "c": opCont, "t": opTerm}
	switch cmd := f[0]; {
	case cmd == "q" && len(f) == 1:
		return true
	case cmd == "h" && len(f) == 1:
		for _, l := range helpText {
			u.history = append(u.history, logLine{at: time.Now(), text: l})
			if !u.tty {
				fmt.Fprintln(u.out, l)
			}
		}
		u.say("")
	case cmd == "l" && len(f) == 1:
		if !u.tty {
			for _, l := range u.table(false) {
				fmt.Fprintln(u.out, l)
			}
		}
		u.say("")
	case (ops[cmd] != "" || cmd == "s") && len(f) == 2:
		n, err := strconv.Atoi(f[1])
		if err != nil {
			u.say(fmt.Sprintf("bad worker number %q (h for help)", f[1]))
			return false
		}
		if cmd == "s" {
			_, _, err = u.c.start(n, fmt.Sprintf("start %d", n))
		} else {
			_, _, err = u.c.signal(n, ops[cmd])
		}
		if err != nil {
			u.say(err.Error())
			return false
		}
		u.say("")
	default:
		u.say(fmt.Sprintf("unknown command %q (h for help)", line))
	}
	return false
}

// say shows the answer to a command.
func (u *ui) say(s string) {
	u.msg = s
	if !u.tty && s != "" {
		fmt.Fprintln(u.out, s)
	}
}

func (u *ui) bye(s string) {
	if u.tty {
		fmt.Fprintf(u.out, "\x1b[%d;1H%s\r\n", u.rows, escEOS)
	}
	fmt.Fprintln(u.out, "check:", s)
}

// flush takes the cluster's new log lines; on a plain output it prints
// them.
func (u *ui) flush() {
	for _, l := range u.c.takeLogs() {
		// Keep the history in time order: a failover is logged once
		// the new master has held, at the time of the fault.
		i := len(u.history)
		for i > 0 && u.history[i-1].at.After(l.at) {
			i--
		}
		u.history = slices.Insert(u.history, i, l)
		if !u.tty {
			fmt.Fprintln(u.out, l.at.Format("15:04:05.000"), l.text)
		}
	}
	if n := len(u.history); n > 500 {
		u.history = append(u.history[:0], u.history[n-200:]...)
	}
}

func (u *ui) title() string {
	cfg := u.c.cfg
	t := fmt.Sprintf("msc check — %d workers on 127.0.0.1:%d-%d · aes128 · interval %v · wait %v",
		len(u.c.workers), u.c.ports[0], u.c.ports[len(u.c.ports)-1], cfg.interval, cfg.wait)
	if cfg.balance {
		t += fmt.Sprintf(" · balance: %d keys", cfg.keys)
	}
	return t
}

// redraw draws the screen on a terminal; on a plain output it prints the
// new log lines.
func (u *ui) redraw() {
	u.flush()
	if !u.tty {
		return
	}
	rows, cols := termSize(u.out)
	if rows != u.rows || cols != u.cols || !u.drawn {
		u.rows, u.cols = rows, cols
		fmt.Fprint(u.out, escClear)
		u.drawn = false
	}
	lines := u.screen()
	var b strings.Builder
	if u.drawn {
		b.WriteString(escSave)
	}
	for i, l := range lines {
		fmt.Fprintf(&b, "\x1b[%d;1H%s%s", i+1, l, escEOL)
	}
	if u.drawn {
		b.WriteString(escRestore)
	} else {
		// First draw: put the prompt under the screen.
		u.prompt = len(lines) + 1
		fmt.Fprintf(&b, "\x1b[%d;1H%s> ", u.prompt, escEOS)
		u.drawn = true
	}
	io.WriteString(u.out, b.String())
}

// promptAgain clears the prompt line after a command was entered (the
// terminal echoed it, and the newline, there).
func (u *ui) promptAgain() {
	if u.tty && u.drawn {
		fmt.Fprintf(u.out, "\x1b[%d;1H%s> ", u.prompt, escEOS)
	}
}

// screen returns every line above the prompt, fitted to the terminal.
func (u *ui) screen() []string {
	var lines []string
	add := func(s, style string) {
		s = fit(s, u.cols-1)
		if style != "" {
			s = style + s + escReset
		}
		lines = append(lines, s)
	}
	add(u.title()+"   "+time.Now().Format("15:04:05"), escBold)
	add("", "")
	for _, l := range u.table(true) {
		lines = append(lines, fitANSI(l, u.cols-1))
	}
	add("", "")
	status, style := u.status()
	add(status, style)
	if u.c.cfg.balance {
		add(u.keysStatus())
	}
	add("", "")
	add("events", escBold)
	n := max(u.rows-len(lines)-5, 3) // help, message, prompt, one spare
	h := u.history
	if len(h) > n {
		h = h[len(h)-n:]
	}
	for i := 0; i < n; i++ {
		if i >= len(h) {
			add("", "")
			continue
		}
		style := ""
		if h[i].warn {
			style = escRed
		}
		add(h[i].at.Format("15:04:05.000")+"  "+h[i].text, style)
	}
	add("", "")
	add(helpLine, escDim)
	add(u.msg, escYellow)
	return lines
}

// fit cuts s to n runes.
func fit(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// fitANSI cuts s to n visible runes, skipping escape sequences.
func fitANSI(s string, n int) string {
	if n <= 0 {
		return s
	}
	visible := 0
	for i := 0; i < len(s); {
		if s[i] == '\x1b' {
			j := strings.IndexByte(s[i:], 'm')
			if j < 0 {
				return s[:i]
			}
			i += j + 1
			continue
		}
		if visible == n {
			return s[:i] + escReset
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		visible++
	}
	return s
}

// table returns the worker table; with color, marks are colored.
func (u *ui) table(color bool) []string {
	c := u.c
	c.mu.Lock()
	defer c.mu.Unlock()
	paint := func(s, style string) string {
		if !color || style == "" {
			return s
		}
		return style + s + escReset
	}
	head := fmt.Sprintf("%3s  %-7s  %-9s  %-16s  %-6s  %-5s  %-5s  %-5s  %-8s  %-5s  %s",
		"#", "pid", "state", "uid", "master", "key 1", "key 2", "key 3", "uptime", "peers", "errors")
	if c.cfg.balance {
		// One column, as wide as the three it replaces: how many keys
		// each worker masters.
		head = fmt.Sprintf("%3s  %-7s  %-9s  %-16s  %-6s  %-19s  %-8s  %-5s  %s",
			"#", "pid", "state", "uid", "master", "keys mastered", "uptime", "peers", "errors")
	}
	out := []string{paint(head, escBold)}
	now := time.Now()
	for _, w := range c.workers {
		p := w.proc
		pid, uid, uptime, peers, errs := "-", "-", "-", "-", "-"
		mark := func(have, is bool) string { return "" }
		alive := w.state == stRunning || w.state == stPaused || w.state == stStarting || w.state == stStopping
		if p != nil {
			pid, uid, errs = strconv.Itoa(p.pid), p.rep.UID, strconv.Itoa(p.errs)
			if uid == "" {
				uid = "…"
			}
		}
		if p != nil && alive {
			uptime = now.Sub(p.spawned).Truncate(100 * time.Millisecond).String()
			peers = fmt.Sprintf("%d/%d", p.rep.Peers, len(c.workers)-1)
			mark = func(have, is bool) string {
				switch {
				case !have:
					return "-"
				case is:
					return "★"
				default:
					return "·"
				}
			}
		}
		cells := []string{fmt.Sprintf("%3d  %-7s  ", w.idx, pid)}
		stStyle := ""
		switch w.state {
		case stPaused, stStopping, stStarting:
			stStyle = escYellow
		case stKilled, stStopped, stNone:
			stStyle = escDim
		case stExited:
			stStyle = escRed
		}
		cells = append(cells, paint(fmt.Sprintf("%-9s", w.state), stStyle), fmt.Sprintf("  %-16s  ", fit(uid, 16)))
		cell := func(have, is bool, width int) string {
			m := mark(have, is)
			s := fmt.Sprintf("%-*s", width, "  "+m)
			if m == "★" && w.state == stRunning {
				return paint(s, escGreen)
			}
			return s
		}
		var rep report
		if p != nil {
			rep = p.rep
		}
		cells = append(cells, cell(true, rep.Master, 6))
		switch {
		case c.cfg.balance:
			n := ""
			if p != nil && alive {
				n = strconv.Itoa(rep.Mastered)
			}
			cells = append(cells, fmt.Sprintf("  %4s%-15s", n, ""))
		default:
			for _, k := range allKeys {
				_, have := rep.Keys[k]
				cells = append(cells, "  "+cell(have, rep.Keys[k].Master, 5))
			}
		}
		cells = append(cells, fmt.Sprintf("  %-8s  %-5s  %s", uptime, peers, errs))
		row := strings.Join(cells, "")
		if w.state == stPaused {
			row = paint(row, escDim)
		}
		out = append(out, row)
	}
	return out
}

// status is the line under the table: who is master now, from the
// workers' latest reports, highlighted when there are none or several.
func (u *ui) status() (string, string) {
	c := u.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var masters []string
	for _, w := range c.running() {
		if w.proc.rep.Master {
			masters = append(masters, "w"+strconv.Itoa(w.idx))
		}
	}
	switch len(masters) {
	case 0:
		return "⚠ NO MASTER among the running workers", escYellow
	case 1:
		if _, why := c.settledLocked(0); why != "" {
			return "master " + masters[0] + " · settling: " + why, ""
		}
		return "master " + masters[0] + " · ✓ settled: one master, the oldest; every worker agrees, globally and per key", escGreen
	default:
		return "⚠ " + strconv.Itoa(len(masters)) + " MASTERS: " + strings.Join(masters, ", "), escRed
	}
}

// keysStatus is, in balance mode, the second line under the table: how
// the keys are spread over the running workers, highlighted while some
// key has no master or several.
func (u *ui) keysStatus() (string, string) {
	s := u.c.spread()
	if s.why != "" {
		return "keys: " + s.text(), escYellow
	}
	return "keys: ✓ " + s.text(), escGreen
}
