// Package testhook gives package msctest what package msc does not
// export: package msc sets these functions in its init. They take the node
// (a *msc.Msc) as any, since this package cannot import msc.
package testhook

import "time"

var (
	// Abort drops every connection of the node and stops it without
	// telling its peers, as if its process had been killed.
	Abort func(node any)
	// Pause stops the node's election for d, as SIGSTOP would: it sends
	// no heartbeat and handles nothing until d has passed, then notices
	// the gap as a resumed process does. It returns at once.
	Pause func(node any, d time.Duration)
	// SteppedDown returns when (Unix ns, wall clock) the node's snapshot
	// last stopped making it the global master; 0 if never. check dates
	// the step-downs its workers report by it.
	SteppedDown func(node any) int64
)
