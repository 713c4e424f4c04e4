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
// it returns an error wrapping ErrUnhealthy that says what is stale (and
// ErrStopped after Stop). Use it for a readiness probe. It waits for the
// elector (microseconds), not for the peers.
func (m *Msc) Healthy() error {
	var err error
	if !m.call(func(e *elector) { err = e.healthy(mono()) }) {
		return fmt.Errorf("%w: %w", ErrUnhealthy, ErrStopped)
	}
	return err
}

func (e *elector) healthy(now int64) error {
	c := e.core
	if c.Leaving() {
		return fmt.Errorf("%w: %w", ErrUnhealthy, ErrStopped)
	}
	if !c.Ready() {
		ids := c.Pending()
		return fmt.Errorf("%w: waiting to hear from servers %s", ErrUnhealthy, strings.Join(ids, ", "))
	}
	wait := time.Duration(c.Config().Wait)
	var stale []string
	for _, p := range c.Peers(now) {
		if ago := time.Duration(now - p.Heard); ago > wait && len(p.Conns) > 0 && !p.Leaving {
			stale = append(stale, fmt.Sprintf("%s (last heard %v ago)", p.UID, ago.Round(time.Millisecond)))
		}
	}
	if c.Member() {
		if n, _ := c.LiveVoters(now); n == 0 {
			return fmt.Errorf("%w: a member that hears from no voter is master of nothing", ErrUnhealthy)
		}
	}
	if q := c.Config().Quorum; q > 1 {
		// The voters the votes count (core.settle): live, by UID.
		if n, _ := c.LiveVoters(now); n < q {
			return fmt.Errorf("%w: sees %d of the %d voters of a quorum", ErrUnhealthy, n, q)
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		return fmt.Errorf("%w: stale peers: %s", ErrUnhealthy, strings.Join(stale, ", "))
	}
	return nil
}
