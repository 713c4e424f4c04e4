//go:build unix && !linux

package main

import "syscall"

// sysProcAttr puts a worker in its own process group, so that Ctrl-C in
// the terminal reaches only check, which then ends the workers. A worker
// whose check dies also stops when its standard input closes.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
