package core

// margin is the lease margin M = max(Interval, WaitTimeout/4).
func (c *Core) margin() Duration { return LeaseMargin(c.cfg.Interval, c.cfg.Wait) }

// LeaseMargin is the lease margin M = max(Interval, WaitTimeout/4).
func LeaseMargin(interval, wait Duration) Duration { return max(interval, wait/4) }

// SilentAfter is how long a connection may carry nothing before its
// reader closes it: (WaitTimeout+Interval)/2, so that a broken flow is
// redialed before the peer counts dead at WaitTimeout.
func SilentAfter(interval, wait Duration) Duration { return (wait + interval) / 2 }

// FreshFor is how long after this node last sent its heartbeat a
// mastership still holds (IsMaster): WaitTimeout-M/2. Its peers count it
// dead WaitTimeout after they received that heartbeat, which is later; a
// process paused (or starved) past it answers false when it resumes,
// before its elector has run, even if its clock ran up to
// M/(2*WaitTimeout) slow. It is measured from the last send, not from the
// elector's last step: a node that stepped just before a pause (on a
// peer's frame) sent its last heartbeat up to an Interval earlier.
func FreshFor(interval, wait Duration) Duration {
	return wait - LeaseMargin(interval, wait)/2
}

// ValidAt is valid at now, for a node that last sent at sent.
func ValidAt(now, lease, sent int64, fresh Duration) bool {
	return (lease == 0 || now < lease) && now-sent <= int64(fresh)
}

// Duration is a span of time in nanoseconds, as time.Duration: the core
// does not import package time.
type Duration int64

// second is one second as a Duration.
const second Duration = 1e9
