package msc

import (
	"fmt"
	"slices"
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
	c := e.core
	if c.leaving {
		return fmt.Errorf("%w: %w", ErrUnhealthy, ErrStopped)
	}
	if !c.ready {
		var ids []string
		for id := range c.pending {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return fmt.Errorf("%w: waiting to hear from servers %s", ErrUnhealthy, strings.Join(ids, ", "))
	}
	wait := c.cfg.Wait
	var stale []string
	for _, p := range c.peers {
		if ago := time.Duration(now - p.heard); ago > wait && len(p.conns) > 0 && !p.leaving {
			stale = append(stale, fmt.Sprintf("%s (last heard %v ago)", p.uid, ago.Round(time.Millisecond)))
		}
	}
	if q := c.cfg.Quorum; q > 1 {
		// The voters the votes count (core.settle): live, by UID.
		if n, _ := c.liveVoters(now); n < q {
			return fmt.Errorf("%w: sees %d of the %d voters of a quorum", ErrUnhealthy, n, q)
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		return fmt.Errorf("%w: stale peers: %s", ErrUnhealthy, strings.Join(stale, ", "))
	}
	return nil
}
