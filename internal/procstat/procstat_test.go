//go:build linux

package procstat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestSelf reads this process: its CPU time and its run time grow with
// work it does, and its memory is not zero. It spins until it has run 50
// ms by the scheduler's count (at most 10 s): on a loaded machine (the
// other packages' tests, run beside it) 100 ms of spinning by the clock
// once ran less than 30 ms.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	run0, err := RunSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	cpu0, err := CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run1 := run0
	for run1-run0 < 0.05 && time.Since(start) < 10*time.Second {
		for end := time.Now().Add(10 * time.Millisecond); time.Now().Before(end); {
		}
		if run1, err = RunSeconds(pid); err != nil {
			t.Fatal(err)
		}
	}
	wall := time.Since(start).Seconds()
	cpu1, err := CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	limit := wall*float64(runtime.NumCPU()) + 0.05 // every CPU, and a tick or so
	if d := run1 - run0; d < 0.05 || d > limit {
		t.Errorf("run time grew by %.3f s in %.3f s of spinning", d, wall)
	}
	// Sampled by ticks (4 ms at 250 Hz): at least half of it, give or
	// take a tick.
	if d := cpu1 - cpu0; d < (run1-run0)/2-0.01 || d > limit {
		t.Errorf("CPU time grew by %.3f s in %.3f s of spinning (run time %.3f s)", d, wall, run1-run0)
	}
	rss, anon, err := RSSKiB(pid)
	if err != nil || rss <= 0 || anon <= 0 || anon > rss {
		t.Errorf("RSS %d KiB, anonymous %d KiB, %v", rss, anon, err)
	}
	if _, err := CPUSeconds(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
