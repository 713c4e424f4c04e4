//go:build linux

package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestIdle runs the idle scenario briefly: the workers' CPU and memory,
// then the two reference measurements, each a number read from /proc.
func TestIdle(t *testing.T) {
	var out syncBuffer
	args := append([]string{"-scenario", "idle", "-n", "3", "-steady", "1s"}, fastFlags...)
	code := run(args, strings.NewReader(""), &out, &out)
	s := out.String()
	t.Logf("output:\n%s", s)
	if code != 0 {
		t.Fatalf("idle exited %d", code)
	}
	if n := len(regexp.MustCompile(`(?m)^  worker \d \(pid \d+\): CPU [0-9.]+ % of a core, RSS [0-9.]+ MB \([0-9.]+ MB anonymous\)$`).FindAllString(s, -1)); n != 3 {
		t.Errorf("%d worker lines, want 3", n)
	}
	node := regexp.MustCompile(`(?m)^idle: CPU per node ([0-9.]+) % of a core \(mean; max ([0-9.]+) %\), RSS ([0-9.]+) MB .* 0 mastership changes in 1 s$`).FindStringSubmatch(s)
	if node == nil {
		t.Fatal("no summary line")
	}
	ref := regexp.MustCompile(`(?m)^reference, same binary, no node: waking every 50ms: CPU ([0-9.]+) % of a core, RSS ([0-9.]+) MB; and 3 processes exchanging 86-byte frames every 50ms over loopback TCP, one connection per pair: CPU ([0-9.]+) % per process`).FindStringSubmatch(s)
	if ref == nil {
		t.Fatal("no reference line")
	}
	// The workers run: their memory is read (CPU may round to 0 in a
	// second at the kernel's 10 ms resolution).
	if rss, _ := strconv.ParseFloat(node[3], 64); rss <= 0 {
		t.Errorf("worker RSS %v MB", rss)
	}
	if rss, _ := strconv.ParseFloat(ref[2], 64); rss <= 0 {
		t.Errorf("reference RSS %v MB", rss)
	}
}
