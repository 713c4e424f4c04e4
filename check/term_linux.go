//go:build linux

package main

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	_, _, ok := winsize(w)
	return ok
}

// termSize returns the terminal's rows and columns (24x80 if unknown).
func termSize(w io.Writer) (rows, cols int) {
	r, c, ok := winsize(w)
	if !ok || r == 0 || c == 0 {
		return 24, 80
	}
	return r, c
}

func winsize(w io.Writer) (rows, cols int, ok bool) {
	f, isFile := w.(*os.File)
	if !isFile {
		return 0, 0, false
	}
	var ws struct{ Row, Col, X, Y uint16 }
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), uintptr(syscall.TIOCGWINSZ), uintptr(unsafe.Pointer(&ws)))
	if errno != 0 {
		return 0, 0, false
	}
	return int(ws.Row), int(ws.Col), true
}
