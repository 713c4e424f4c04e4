package msc

import (
	"time"

	"github.com/msc-go/msc/internal/testhook"
)

// Package msctest reaches abort and pauseFor through internal/testhook.
func init() {
	testhook.Abort = func(node any) { node.(*Msc).abort() }
	testhook.Pause = func(node any, d time.Duration) { node.(*Msc).pauseFor(d) }
	testhook.SteppedDown = func(node any) int64 { return node.(*Msc).downAt.Load() }
}

// pauseFor blocks the elector for d without waiting for it, as if the
// process were stopped (SIGSTOP): no heartbeat goes out (the elector
// sends them, and a new connection's first frame holds back a claim older
// than WaitTimeout),
// nothing is elected; then the elector sees the gap and re-joins. Stop
// waits for the pause to end.
func (m *Msc) pauseFor(d time.Duration) {
	if !m.started.Load() {
		return
	}
	m.elect(event{kind: evFunc, fn: func(*elector) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-m.ctx.Done():
		}
	}})
}
