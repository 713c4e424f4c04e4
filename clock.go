package msc

import "time"

// epoch anchors the monotonic clock of this process. Liveness, leases and
// pause detection use mono, not the wall clock, so that a step of the
// system clock (NTP, a VM resume) cannot make a peer look silent or stretch
// a lease. It is read-only after package initialization.
var epoch = time.Now()

// mono returns monotonic nanoseconds since epoch.
func mono() int64 { return int64(time.Since(epoch)) }

// monoTime converts a mono reading to a time.Time, for display.
func monoTime(n int64) time.Time { return epoch.Add(time.Duration(n)) }
