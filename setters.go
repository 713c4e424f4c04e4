package msc

import "maps"

// The methods that change this node's options at run time (SetKey, which
// rotates the passphrase, is in rotation.go).

// SetPriority changes this node's priority (Options.Priority) at run
// time. Raising one node's priority above every other's moves mastership
// to it, globally and of the keys it holds (but not the keys spread by
// Balance, which priority does not order), within about one round trip:
// the master steps down when it hears of the change and the node takes
// over when it hears that, so there is no moment of two masters (with
// Quorum, none at all). This is how to move the master off a machine
// before maintenance. Sticky does not stop a priority change: a master
// keeps its mastership against older nodes, not against a higher
// priority. It waits for the elector (microseconds), not for the peers.
// It returns ErrStopped after Stop.
func (m *Msc) SetPriority(p int) error {
	if !m.call(func(e *elector) {
		e.core.SetPriority(mono(), int64(p))
		e.apply()
	}) {
		return ErrStopped
	}
	return nil
}

// SetMeta replaces this node's metadata (Options.Meta) at run time; the
// peers see it within one Interval (at once, unless a link is slow). It
// returns an error wrapping ErrInvalidOption if it is larger than
// MaxMetaSize encoded, and ErrStopped after Stop. It waits for the
// elector (microseconds), not for the peers.
func (m *Msc) SetMeta(meta map[string]string) error {
	meta = maps.Clone(meta)
	if err := checkMeta(meta); err != nil {
		return err
	}
	if !m.call(func(e *elector) {
		e.core.SetMeta(mono(), meta)
		e.apply()
	}) {
		return ErrStopped
	}
	return nil
}
