package msc

import (
	"maps"
)

// SetMeta replaces this node's metadata (Options.Meta) at run time; the
// peers see it within one Interval (at once, unless a link is slow). It
// returns an error wrapping ErrInvalidOption if it is larger than
// MaxMetaSize encoded, and ErrStopped on a stopped node.
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

// MasterMeta returns the metadata of the master this node knows of, global
// for key "" and of key otherwise (this node's own when it is the master),
// so that a replica can forward a request to the master, for instance to
// meta["http"]. ok is false while no master is known.
func (m *Msc) MasterMeta(key string) (meta map[string]string, ok bool) {
	m.call(func(e *elector) {
		meta, ok = e.core.MasterMeta(key)
	})
	return meta, ok
}

// SetPriority changes this node's priority (Options.Priority) at run
// time. Raising one node's priority above every other's moves mastership
// to it, globally and of the keys it holds (but not the keys spread by
// Balance, which priority does not order), within about one round trip:
// the master steps down when it hears of the change and the node takes
// over when it hears that, so there is no moment of two masters (with
// Quorum, none at all). This is how to move the master off a machine
// before maintenance. Sticky does not stop a priority change: a master
// keeps its mastership against older nodes, not against a higher
// priority. It does nothing on a stopped node.
func (m *Msc) SetPriority(p int) {
	m.call(func(e *elector) {
		e.core.SetPriority(mono(), int64(p))
		e.apply()
	})
}
