//go:build !linux

// Command compare runs msc, hashicorp/raft and hashicorp/memberlist side
// by side; it reads /proc, and runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "compare: Linux only: it reads CPU time and memory from /proc")
	os.Exit(1)
}
