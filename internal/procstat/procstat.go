// Package procstat reads a process's CPU time and memory from Linux's
// /proc, for the tools that measure msc (check, compare).
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPUSeconds returns the user+system CPU time of process pid, from
// /proc/pid/stat. With the kernel's tick accounting
// (CONFIG_TICK_CPU_ACCOUNTING) it is sampled: a tick is charged to the
// thread that runs when the timer interrupt comes, so a process that
// wakes briefly, in step with the clock, can be charged much more or much
// less than it ran (RunSeconds is exact).
func CPUSeconds(pid int) (float64, error) {
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

// RunSeconds returns the time process pid's threads have run on a CPU,
// the sum of the first field of /proc/pid/task/*/schedstat (nanoseconds,
// kept by the scheduler at each switch). A thread that ended is not
// counted: Go's runtime seldom ends one.
func RunSeconds(pid int) (float64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var ns float64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return 0, fmt.Errorf("/proc/%d/task/%s/schedstat: empty", pid, t.Name())
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, err
		}
		ns += v
	}
	return ns / 1e9, nil
}

// RSSKiB returns the resident set size of process pid and its anonymous
// part (heap and stacks: the rest is the binary's and libraries' pages),
// in KiB, from /proc/pid/status.
func RSSKiB(pid int) (rss, anon int, err error) {
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
