package msc

import (
	"time"
	_ "unsafe" // for go:linkname
)

// The monotonic clock. Liveness, leases and pause detection use mono, not
// the wall clock, so that a step of the system clock (NTP, a VM resume)
// cannot make a peer look silent or stretch a lease.
//
// mono reads the runtime's monotonic clock directly, the one time.Now
// reads besides the wall clock: IsMaster reads it on every call on a
// master, and time.Since costs about 5 ns more (it reads both clocks).

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// epoch and epochNano anchor the clock, read-only after package
// initialization.
var (
	epoch     = time.Now()
	epochNano = nanotime()
)

// mono returns monotonic nanoseconds since epoch.
func mono() int64 { return nanotime() - epochNano }

// monoTime converts a mono reading to a time.Time, for display.
func monoTime(n int64) time.Time { return epoch.Add(time.Duration(n)) }
