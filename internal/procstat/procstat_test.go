//go:build linux

package procstat

import (
	"os"
	"testing"
	"time"
)

// TestSelf reads this process: its CPU time grows with work it does, its
// run time is at least its sampled CPU time's order, and its memory is
// not zero.
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
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	run1, err := RunSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	cpu1, err := CPUSeconds(pid)
	if err != nil {
		t.Fatal(err)
	}
	if d := run1 - run0; d < 0.05 || d > 5 {
		t.Errorf("run time grew by %.3f s over 100 ms of spinning", d)
	}
	if d := cpu1 - cpu0; d < 0.03 || d > 5 {
		t.Errorf("CPU time grew by %.3f s over 100 ms of spinning", d)
	}
	rss, anon, err := RSSKiB(pid)
	if err != nil || rss <= 0 || anon <= 0 || anon > rss {
		t.Errorf("RSS %d KiB, anonymous %d KiB, %v", rss, anon, err)
	}
	if _, err := CPUSeconds(-1); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
