package msc

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain runs the package tests, then checks that no goroutine of a
// node outlived the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitNoGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of msc left after all tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}
