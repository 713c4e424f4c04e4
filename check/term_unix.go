//go:build unix && !linux

package main

import (
	"io"
	"os"
)

// isTerminal reports whether w is a character device, most likely a
// terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && fi.Mode()&os.ModeDevice != 0
}

// termSize returns a usual terminal size; check draws within it.
func termSize(io.Writer) (rows, cols int) { return 40, 120 }
