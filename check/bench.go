//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

// benchRow is what one kind of fault measured on one cluster size.
type benchRow struct {
	n           int
	fault       string
	times       []time.Duration // fault to exactly one master, per repetition
	none, multi time.Duration   // in all repetitions
	keyed       bool            // a key's failover: its times only (check keeps no key timeline)
	changes     int             // steady: global changes reported
	length      time.Duration   // steady: how long it ran
}

// runBench measures failovers: for each cluster size, a steady run with
// no fault, then each fault repeated -reps times on the master: crash
// (SIGKILL, then start it again), pause (SIGSTOP; SIGCONT once a new
// master is settled, after which the continued worker, the oldest, takes
// over again: "resume"), and graceful (SIGTERM, then start it again).
func runBench(ctx context.Context, cfg *config, ports []int, out io.Writer) int {
	fmt.Fprintf(out, "bench: sizes %v, %d repetitions, interval %v, wait %v, quorum %v, steady %v; %d CPUs, %s/%s\n",
		cfg.sizes, cfg.reps, cfg.interval, cfg.wait, cfg.quorum, cfg.steady, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	var rows []benchRow
	for _, n := range cfg.sizes {
		r, err := benchSize(ctx, cfg, ports[:n], out)
		rows = append(rows, r...)
		if err != nil {
			fmt.Fprintf(out, "bench: FAILED with %d workers: %v\n", n, err)
			printBench(out, rows)
			return 1
		}
	}
	printBench(out, rows)
	return 0
}

func benchSize(ctx context.Context, cfg *config, ports []int, out io.Writer) ([]benchRow, error) {
	n := len(ports)
	c := newCluster(cfg, ports)
	defer c.close()
	bound := cfg.bound()
	from := time.Now().UnixNano()
	if err := startAll(ctx, c, ""); err != nil {
		return nil, err
	}
	if _, _, err := c.waitSettled(ctx, from, bound); err != nil {
		return nil, fmt.Errorf("converge: %w", err)
	}

	steady := benchRow{n: n, fault: "steady"}
	from = time.Now().UnixNano()
	select {
	case <-time.After(cfg.steady):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.tick()
	to := time.Now().UnixNano()
	w := c.window(from, to)
	steady.none, steady.multi, steady.changes, steady.length = w.None, w.Multi, w.Changes, time.Duration(to-from)
	rows := []benchRow{steady}
	fmt.Fprintf(out, "  n=%d steady %v: %d changes\n", n, cfg.steady, w.Changes)

	// settle waits after the instant at and returns the master and the
	// window since at.
	settle := func(at int64, what string) (int, window, error) {
		m, _, err := c.waitSettled(ctx, at, bound)
		if err != nil {
			return -1, window{}, fmt.Errorf("%s: %w", what, err)
		}
		return m, c.window(at, time.Now().UnixNano()), nil
	}
	took := func(w window, at int64) time.Duration { return time.Duration(max(w.Last-at, 0)) }
	restart := func(i int) error {
		_, at, err := c.start(i, "")
		if err != nil {
			return err
		}
		_, _, err = settle(at, fmt.Sprintf("start %d", i))
		return err
	}

	crash := benchRow{n: n, fault: "crash"}
	pause := benchRow{n: n, fault: "pause"}
	resume := benchRow{n: n, fault: "resume"}
	graceful := benchRow{n: n, fault: "graceful"}
	add := func(r *benchRow, w window, at int64) {
		if d := took(w, at); cfg.verbose && (d > cfg.wait/2 && r.fault != "pause" || w.Multi > 0) {
			fmt.Fprintf(out, "  n=%d %s took %s:\n", n, r.fault, ms(d))
			for _, l := range c.dump(at-int64(cfg.wait), time.Now().UnixNano()) {
				fmt.Fprintln(out, "    "+l)
			}
		}
		r.times = append(r.times, took(w, at))
		r.none += w.None
		r.multi += w.Multi
	}
	rowsSoFar := func() []benchRow { return append(rows, crash, pause, resume, graceful) }
	// masterReps signals the master with op, waits until the cluster
	// settles, adds the failover to r and starts the worker again, reps
	// times.
	masterReps := func(op, fault string, r *benchRow) error {
		for range cfg.reps {
			m, _ := c.master()
			_, at, err := c.signal(m, op)
			if err != nil {
				return err
			}
			_, w, err := settle(at, fault)
			if err != nil {
				return err
			}
			add(r, w, at)
			if err := restart(m); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "  n=%d %s: done\n", n, fault)
		return nil
	}
	if cfg.voters > 0 {
		// A member master of a key crashes: until another holder says
		// it is master of that key (its report's time). Before the
		// crashes of the master voter: a voter restarted less than
		// WaitTimeout+M ago names no key's master yet (core keysWait),
		// and a member's failover then waits for it.
		keyCrash := benchRow{n: n, fault: "key crash", keyed: true}
		for range cfg.reps {
			m, key := c.memberMaster()
			if m < 0 {
				return rowsSoFar(), fmt.Errorf("key crash: no member masters a key another member holds")
			}
			_, at, err := c.signal(m, opKill)
			if err != nil {
				return rowsSoFar(), err
			}
			if _, _, err := settle(at, "key crash"); err != nil {
				return rowsSoFar(), err
			}
			up := c.keyUpAfter(key, at, m)
			if up == 0 {
				return rowsSoFar(), fmt.Errorf("key crash: no new master of key %q reported", key)
			}
			keyCrash.times = append(keyCrash.times, time.Duration(up-at))
			if cfg.verbose {
				fmt.Fprintf(out, "  n=%d key crash: worker %d (master of %q) killed at %d; a new master after %s\n", n, m, key, at, ms(time.Duration(up-at)))
			}
			if err := restart(m); err != nil {
				return rowsSoFar(), err
			}
		}
		rows = append(rows, keyCrash)
		fmt.Fprintf(out, "  n=%d key crash: done\n", n)
	}
	if err := masterReps(opKill, "crash", &crash); err != nil {
		return rowsSoFar(), err
	}
	for range cfg.reps {
		m, _ := c.master()
		_, at, err := c.signal(m, opPause)
		if err != nil {
			return rowsSoFar(), err
		}
		_, w, err := settle(at, "pause")
		if err != nil {
			return rowsSoFar(), err
		}
		add(&pause, w, at)
		_, at, err = c.signal(m, opCont)
		if err != nil {
			return rowsSoFar(), err
		}
		back, w, err := settle(at, "resume")
		if err != nil {
			return rowsSoFar(), err
		}
		if back != m {
			return rowsSoFar(), fmt.Errorf("resume: master w%d, want w%d back", back, m)
		}
		add(&resume, w, at)
	}
	fmt.Fprintf(out, "  n=%d pause and resume: done\n", n)
	if cfg.verbose {
		c.mu.Lock()
		early := slices.Clone(c.downEarly)
		c.mu.Unlock()
		if len(early) > 0 {
			slices.Sort(early)
			fmt.Fprintf(out, "  n=%d so far, %d step-downs dated by the node before their reports: median %s, max %s earlier\n",
				n, len(early), ms(early[len(early)/2]), ms(early[len(early)-1]))
		}
	}
	if err := masterReps(opTerm, "graceful", &graceful); err != nil {
		return rowsSoFar(), err
	}
	return rowsSoFar(), nil
}

func printBench(out io.Writer, rows []benchRow) {
	fmt.Fprintln(out, "\nfault to exactly one master (workers' timestamps), and time with two or more masters / none:")
	fmt.Fprintf(out, "%3s  %-9s %5s  %10s %10s %10s   %12s %12s  %s\n", "n", "fault", "reps", "median", "p90", "max", "≥2 masters", "no master", "changes")
	for _, r := range rows {
		if r.fault == "steady" {
			fmt.Fprintf(out, "%3d  %-9s %5s  %10s %10s %10s   %12s %12s  %d in %v\n", r.n, r.fault, "-", "-", "-", "-",
				ms(r.multi), ms(r.none), r.changes, r.length.Round(time.Millisecond))
			continue
		}
		if len(r.times) == 0 {
			continue
		}
		s := slices.Clone(r.times)
		slices.Sort(s)
		multi, none := ms(r.multi), ms(r.none)
		if r.keyed {
			multi, none = "-", "-"
		}
		fmt.Fprintf(out, "%3d  %-9s %5d  %10s %10s %10s   %12s %12s\n", r.n, r.fault, len(s),
			ms(percentile(s, 0.5)), ms(percentile(s, 0.9)), ms(s[len(s)-1]), multi, none)
	}
	fmt.Fprintln(out, "crash: SIGKILL of the master; pause: SIGSTOP of the master; resume: SIGCONT of it once a new")
	fmt.Fprintln(out, "master settled (it is the oldest: it takes over again); graceful: SIGTERM (Stop) of the master.")
	fmt.Fprintln(out, "key crash (-voters): SIGKILL of a member master of a key, until another member reports it is master of it;")
	fmt.Fprintln(out, "run before the master's crashes: a voter restarted less than WaitTimeout+max(Interval, WaitTimeout/4) ago")
	fmt.Fprintln(out, "names no key's master yet, and a member's failover waits for it (docs/deploying.md, \"Large clusters\").")
}

// percentile returns the nearest-rank percentile p of sorted s.
func percentile(s []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
