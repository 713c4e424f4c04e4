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

	"github.com/msc-go/msc/internal/procstat"
)

// runIdle is the idle scenario (-scenario idle): -n worker processes, one
// per node, converge, then sit through -steady with no fault; it reports
// each worker's CPU (user+system, from /proc) as a share of one core, and
// its resident memory, read from the kernel, not from the workers. Then,
// for reference, over a second window of -steady with the workers gone: a
// process of the same binary that only wakes every interval, and -n such
// processes that also exchange a steady heartbeat's worth of bytes over
// loopback TCP, as the nodes do, without the library (floorMain). ports
// holds 2n ports: the workers', then the references'. Linux only.
func runIdle(ctx context.Context, cfg *config, ports []int, out io.Writer) int {
	n := len(ports) / 2
	fmt.Fprintf(out, "idle: %d workers, interval %v, wait %v, quorum %v, window %v; %d CPUs, %s/%s\n",
		n, cfg.interval, cfg.wait, cfg.quorum, cfg.steady, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	c := newCluster(cfg, ports[:n])
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
	pids := make([]int, n)
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
	t0 := time.Now()
	use, err := measure(ctx, pids, cfg.steady)
	if err != nil {
		fmt.Fprintln(out, "idle:", err)
		return 1
	}
	end := time.Now().UnixNano()
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
	changes := c.window(t0.UnixNano(), end).Changes
	c.close()
	for i, u := range use {
		fmt.Fprintf(out, "  worker %d (pid %d): CPU %.3f %% of a core, RSS %.1f MB (%.1f MB anonymous)\n", i, pids[i], u.cpu, mb(u.rss), mb(u.anon))
	}
	node := summarize(use)
	fmt.Fprintf(out, "idle: CPU per node %.3f %% of a core (mean; max %.3f %%), RSS %.1f MB (mean; max %.1f MB; %.1f MB anonymous), %d mastership changes in %.0f s\n",
		node.cpu, node.cpuMax, node.rss, node.rssMax, node.anon, changes, cfg.steady.Seconds())

	// The references, in a window of their own.
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	meshPorts := ports[n:]
	list := make([]string, n)
	for i, p := range meshPorts {
		list[i] = strconv.Itoa(p)
	}
	for i := -1; i < n; i++ {
		args := []string{"-floor", "-interval", cfg.interval.String()}
		if i >= 0 {
			args = append(args, "-index", strconv.Itoa(i), "-ports", strings.Join(list, ","))
		}
		p := exec.Command(cfg.exe, args...)
		p.Env = append(os.Environ(), workerEnv+"=1")
		p.Stderr = os.Stderr
		if err := p.Start(); err != nil {
			fmt.Fprintln(out, "idle:", err)
			return 1
		}
		procs = append(procs, p)
	}
	time.Sleep(time.Second) // the mesh connects
	refPids := make([]int, len(procs))
	for i, p := range procs {
		refPids[i] = p.Process.Pid
	}
	ref, err := measure(ctx, refPids, cfg.steady)
	if err != nil {
		fmt.Fprintln(out, "idle:", err)
		return 1
	}
	mesh := summarize(ref[1:])
	fmt.Fprintf(out, "reference, same binary, no node: waking every %v: CPU %.3f %% of a core, RSS %.1f MB; and %d processes exchanging %d-byte frames every %v over loopback TCP, one connection per pair: CPU %.3f %% per process (max %.3f %%)\n",
		cfg.interval, ref[0].cpu, mb(ref[0].rss), n, steadyFrame, cfg.interval, mesh.cpu, mesh.cpuMax)
	if changes != 0 {
		return 1
	}
	return 0
}

// usage is a process's CPU over a window, as a percentage of one core,
// and its memory at the end, in KiB.
type usage struct {
	cpu       float64
	rss, anon int
}

// measure reads the CPU time of each process over a window of d.
func measure(ctx context.Context, pids []int, d time.Duration) ([]usage, error) {
	before := make([]float64, len(pids))
	for i, pid := range pids {
		t, err := procstat.CPUSeconds(pid)
		if err != nil {
			return nil, err
		}
		before[i] = t
	}
	t0 := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	elapsed := time.Since(t0).Seconds()
	use := make([]usage, len(pids))
	for i, pid := range pids {
		t, err := procstat.CPUSeconds(pid)
		if err != nil {
			return nil, err
		}
		use[i].cpu = 100 * (t - before[i]) / elapsed
		use[i].rss, use[i].anon, _ = procstat.RSSKiB(pid)
	}
	return use, nil
}

// summary is the mean (and max) of usages, memory in MB.
type summary struct {
	cpu, cpuMax, rss, rssMax, anon float64
}

func summarize(use []usage) summary {
	var s summary
	for _, u := range use {
		s.cpu += u.cpu
		s.cpuMax = max(s.cpuMax, u.cpu)
		s.rss += mb(u.rss)
		s.rssMax = max(s.rssMax, mb(u.rss))
		s.anon += mb(u.anon)
	}
	n := float64(len(use))
	s.cpu, s.rss, s.anon = s.cpu/n, s.rss/n, s.anon/n
	return s
}

func mb(kib int) float64 { return float64(kib) / 1024 }
