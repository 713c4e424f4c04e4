//go:build !unix

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "check: needs a Unix system (it pauses workers with SIGSTOP)")
	os.Exit(2)
}
