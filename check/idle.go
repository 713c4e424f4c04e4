package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// runIdle is the idle scenario (-scenario idle): -n worker processes, one
// per node, converge, then sit through -steady with no fault; it reports
// each worker's CPU (user+system, from /proc) as a share of one core, and
// its resident memory, read from the kernel, not from the workers. Linux
// only.
func runIdle(ctx context.Context, cfg *config, ports []int, out io.Writer) int {
	fmt.Fprintf(out, "idle: %d workers, interval %v, wait %v, quorum %v, window %v; %d CPUs, %s/%s\n",
		len(ports), cfg.interval, cfg.wait, cfg.quorum, cfg.steady, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	c := newCluster(cfg, ports)
	defer c.close()
	from := time.Now().UnixNano()
	if err := startAll(ctx, c, ""); err != nil {
		fmt.Fprintln(out, "idle:", err)
		return 1
	}
	if _, _, err := c.waitSettled(ctx, from, cfg.bound()); err != nil {
		fmt.Fprintln(out, "idle: converge:", err)
		return 1
	}
	pids := make([]int, len(ports))
	c.mu.Lock()
	for i, w := range c.workers {
		pids[i] = w.proc.pid
	}
	c.mu.Unlock()
	// The workers report their status ten times a second by default;
	// that is check's cost, not the node's: they report once every
	// quietReport during the window (changes are still reported at once).
	c.command("quiet")
	time.Sleep(50 * time.Millisecond) // the last fast report is written
	// The reference: a Go process that only wakes every interval.
	floor := exec.Command(cfg.exe, "-floor", "-interval", cfg.interval.String())
	floor.Env = append(os.Environ(), workerEnv+"=1")
	if err := floor.Start(); err != nil {
		fmt.Fprintln(out, "idle:", err)
		return 1
	}
	defer func() {
		floor.Process.Kill()
		floor.Wait()
	}()
	pids = append(pids, floor.Process.Pid)
	before := make([]float64, len(pids))
	for i, pid := range pids {
		t, err := cpuSeconds(pid)
		if err != nil {
			fmt.Fprintln(out, "idle:", err)
			return 1
		}
		before[i] = t
	}
	t0 := time.Now()
	select {
	case <-time.After(cfg.steady):
	case <-ctx.Done():
		return 1
	}
	elapsed := time.Since(t0).Seconds()
	end := time.Now().UnixNano()
	pct := make([]float64, len(pids))
	rss := make([]int, len(pids))
	anon := make([]int, len(pids))
	for i, pid := range pids {
		t, err := cpuSeconds(pid)
		if err != nil {
			fmt.Fprintln(out, "idle:", err)
			return 1
		}
		pct[i] = 100 * (t - before[i]) / elapsed
		rss[i], anon[i], _ = rssKiB(pid)
	}
	// Measured; now the reports that cover the end of the window.
	c.command("loud")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		c.mu.Lock()
		wm := c.watermark()
		c.mu.Unlock()
		if wm >= end {
			break
		}
	}
	c.tick()
	w := c.window(t0.UnixNano(), end)
	floorPct, floorRSS := pct[len(pids)-1], rss[len(pids)-1]
	pids = pids[:len(pids)-1]
	var sum, worst float64
	var rssSum, rssWorst, anonSum int
	for i, pid := range pids {
		fmt.Fprintf(out, "  worker %d (pid %d): CPU %.3f %% of a core, RSS %.1f MB (%.1f MB anonymous)\n", i, pid, pct[i], float64(rss[i])/1024, float64(anon[i])/1024)
		sum += pct[i]
		worst = max(worst, pct[i])
		rssSum += rss[i]
		anonSum += anon[i]
		rssWorst = max(rssWorst, rss[i])
	}
	n := float64(len(pids))
	changes := w.Changes
	fmt.Fprintf(out, "  reference: a Go process that only wakes every %v: CPU %.3f %% of a core, RSS %.1f MB\n", cfg.interval, floorPct, float64(floorRSS)/1024)
	fmt.Fprintf(out, "idle: CPU per node %.3f %% of a core (mean; max %.3f %%), RSS %.1f MB (mean; max %.1f MB; %.1f MB anonymous), %d mastership changes in %.0f s\n",
		sum/n, worst, float64(rssSum)/n/1024, float64(rssWorst)/1024, float64(anonSum)/n/1024, changes, elapsed)
	if changes != 0 {
		return 1
	}
	return 0
}

// cpuSeconds returns the user+system CPU time of process pid, from
// /proc/pid/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields are counted after its closing one.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseFloat(f[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(f[12], 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	const clockTicks = 100 // USER_HZ on Linux
	return (utime + stime) / clockTicks, nil
}

// rssKiB returns the resident set size of process pid and its anonymous
// part (heap and stacks: the rest is the binary's pages, shared by the
// workers), in KiB.
func rssKiB(pid int) (rss, anon int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	field := func(name string) (int, error) {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, name+":"); ok {
				return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			}
		}
		return 0, fmt.Errorf("/proc/%d/status: no %s", pid, name)
	}
	if rss, err = field("VmRSS"); err != nil {
		return 0, 0, err
	}
	anon, err = field("RssAnon")
	return rss, anon, err
}
