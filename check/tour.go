//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"time"
)

// tour runs the scripted tour: converge; kill the master; pause the
// master, then continue it; stop the master gracefully; start each
// stopped or killed worker again. After each step the cluster must settle
// within the bound. It returns 0 if it always did.
func tour(ctx context.Context, cfg *config, ports []int, out io.Writer) int {
	c := newCluster(cfg, ports)
	defer c.close()
	bound := cfg.bound()
	fmt.Fprintf(out, "tour: %d workers on 127.0.0.1:%d-%d, interval %v, wait %v; each step must settle within %v\n",
		len(ports), ports[0], ports[len(ports)-1], cfg.interval, cfg.wait, bound)
	if cfg.balance {
		fmt.Fprintf(out, "tour: balance: every worker holds the same %d keys; each step must also settle with one master per key\n", cfg.keys)
	}

	t := &tourRun{c: c, out: out, ctx: ctx, bound: bound, master: -1}
	if err := t.converge(); err != nil {
		return t.fail(err)
	}
	down := []int{}
	m := t.master
	if err := t.fault("kill master", m, opKill); err != nil {
		return t.fail(err)
	}
	down = append(down, m)

	if cfg.voters > 0 && len(ports) > cfg.voters {
		// The oldest member, master of keys: they move to other members.
		mem := c.oldestMember()
		if err := t.fault("kill member", mem, opKill); err != nil {
			return t.fail(err)
		}
		down = append(down, mem)
	}

	m = t.master
	if err := t.fault("pause master", m, opPause); err != nil {
		return t.fail(err)
	}
	if err := t.fault("continue", m, opCont); err != nil {
		return t.fail(err)
	}
	if t.master != m {
		return t.fail(fmt.Errorf("continued worker %d, the oldest, did not take mastership back (master w%d)", m, t.master))
	}

	m = t.master
	if err := t.fault("stop master (SIGTERM)", m, opTerm); err != nil {
		return t.fail(err)
	}
	c.mu.Lock()
	st, exitErr := c.workers[m].state, c.workers[m].proc.exitErr
	c.mu.Unlock()
	if st != stStopped {
		return t.fail(fmt.Errorf("worker %d is %s after SIGTERM (%s), want stopped with exit status 0", m, st, exitText(exitErr)))
	}
	down = append(down, m)

	for _, i := range down {
		before := t.master
		if err := t.restart(i); err != nil {
			return t.fail(err)
		}
		if t.master != before {
			return t.fail(fmt.Errorf("starting worker %d moved mastership from w%d to w%d: the youngest must not win", i, before, t.master))
		}
	}
	fmt.Fprintf(out, "tour: ok — %d steps on %d workers; worst failover %s (bound %v); two masters for %s, no master for %s in all\n",
		t.step, len(ports), ms(t.worst), bound, ms(t.multi), ms(t.none))
	return 0
}

// tourRun is the state of a tour.
type tourRun struct {
	c           *cluster
	out         io.Writer
	ctx         context.Context
	bound       time.Duration
	step        int
	master      int
	worst       time.Duration
	none, multi time.Duration
}

func (t *tourRun) fail(err error) int {
	fmt.Fprintf(t.out, "tour: FAILED at step %d: %v\n", t.step, err)
	u := &ui{c: t.c}
	for _, l := range u.table(false) {
		fmt.Fprintln(t.out, "  "+l)
	}
	for _, l := range t.c.takeLogs() {
		fmt.Fprintln(t.out, "  "+l.at.Format("15:04:05.000")+" "+l.text)
	}
	return 1
}

func (t *tourRun) converge() error {
	t.step++
	from := time.Now().UnixNano()
	if err := startAll(t.ctx, t.c, "converge"); err != nil {
		return err
	}
	return t.settle("converge", from, "start all")
}

func (t *tourRun) fault(what string, i int, op string) error {
	t.step++
	_, at, err := t.c.signal(i, op)
	if err != nil {
		return err
	}
	return t.settle(fmt.Sprintf("%s %d", what, i), at, op)
}

func (t *tourRun) restart(i int) error {
	t.step++
	_, at, err := t.c.start(i, "")
	if err != nil {
		return err
	}
	return t.settle(fmt.Sprintf("start %d again", i), at, "start")
}

// settle waits for the cluster to settle after the fault at instant at
// and prints the step.
func (t *tourRun) settle(desc string, at int64, op string) error {
	m, took, err := t.c.waitSettled(t.ctx, at, t.bound)
	if err != nil {
		return fmt.Errorf("%s: %w", desc, err)
	}
	// The workers' status reports and their change events are separate
	// lines: the change that made the settled state may still be on its
	// way. Give it a moment to arrive.
	w := t.c.window(at, time.Now().UnixNano())
	for tries := 0; (w.Last < 0 || w.LastMaster.w != m) && tries < 100; tries++ {
		time.Sleep(10 * time.Millisecond)
		w = t.c.window(at, time.Now().UnixNano())
	}
	if w.Last < 0 || w.LastMaster.w != m {
		return fmt.Errorf("%s: settled on w%d, but the workers' changes do not end with it as the only master", desc, m)
	}
	one := time.Duration(max(w.Last-at, 0))
	what := fmt.Sprintf("master now w%d", m)
	if m == t.master {
		what = fmt.Sprintf("master still w%d", m)
	}
	t.master = m
	t.worst = max(t.worst, one)
	t.none += w.None
	t.multi += w.Multi
	fmt.Fprintf(t.out, "step %d  %-26s %-16s  one master after %9s  settled after %9s%s\n",
		t.step, desc, what, ms(one), ms(took), overlapText(w.None, w.Multi))
	if t.c.cfg.balance {
		fmt.Fprintf(t.out, "        keys: %s\n", t.c.spread().text())
	}
	return nil
}
