//go:build linux

package main

import "syscall"

// sysProcAttr puts a worker in its own process group, so that Ctrl-C in
// the terminal reaches only check (which then ends the workers), and asks
// Linux to kill it if check dies without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
