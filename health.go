package msc

import (
	"fmt"
	"strings"
	"time"
)

// Healthy returns nil while this node's view of the cluster is fresh: it
// is running, has heard from (or failed to reach) every server since Start,
// and, with Quorum, has heard from a quorum within WaitTimeout. Otherwise
// it returns an error wrapping ErrUnhealthy that says what is stale. Use
// it for a readiness probe.
func (m *Msc) Healthy() error {
	var err error
	if !m.call(func(e *elector) { err = e.healthy(mono()) }) {
		return fmt.Errorf("%w: %w", ErrUnhealthy, ErrStopped)
	}
	return err
}

func (e *elector) healthy(now int64) error {
	if e.leaving {
		return fmt.Errorf("%w: %w", ErrUnhealthy, ErrStopped)
	}
	if !e.ready {
		var ids []string
		for id := range e.pending {
			ids = append(ids, id)
		}
		return fmt.Errorf("%w: waiting to hear from servers %s", ErrUnhealthy, strings.Join(ids, ", "))
	}
	wait := e.m.cfg.WaitTimeout
	fresh := 1
	var stale []string
	for _, p := range e.peers {
		ago := time.Duration(now - p.heard())
		if ago <= wait {
			fresh++
		} else if p.live() {
			stale = append(stale, fmt.Sprintf("%s (last heard %v ago)", p.uid, ago.Round(time.Millisecond)))
		}
	}
	if q := e.m.cfg.Quorum; q > 1 && fresh < q {
		return fmt.Errorf("%w: sees %d of the %d nodes of a quorum", ErrUnhealthy, fresh, q)
	}
	if len(stale) > 0 {
		return fmt.Errorf("%w: stale peers: %s", ErrUnhealthy, strings.Join(stale, ", "))
	}
	return nil
}
