package msc

import (
	"fmt"
	"slices"
)

// AddKey makes this node compete for key. Mastership is re-elected and
// peers are told at once. Without Quorum, when AddKey returns,
// IsMasterByKey reflects the new key (unless a live peer masters it: then
// this node takes over once that one has let it go, a message later);
// with Quorum, the node is master of it once a quorum has acknowledged
// its claim, a round trip later. It waits for the elector, which takes
// microseconds. It returns an error wrapping ErrInvalidKey for an empty
// key or one longer than MaxKeyLen, and ErrStopped after Stop; adding a
// key the node holds already does nothing and returns nil.
func (m *Msc) AddKey(key string) error { return m.changeKeys(true, key) }

// AddKeys adds several keys at once: one election and one message to the
// peers, where AddKey in a loop would cost one each. If a key is invalid
// it adds none of them and returns an error wrapping ErrInvalidKey that
// names the first; it returns ErrStopped after Stop. It waits for the
// elector, as AddKey does.
func (m *Msc) AddKeys(keys ...string) error { return m.changeKeys(true, keys...) }

// RemoveKey stops this node competing for key; peers are told at once.
// If this node is master of key, it first gives the mastership up while
// still holding the key, so that no peer takes over until the
// RunAsMasterByKey functions of key have returned: it blocks until they
// have, or WaitTimeout has passed. It returns an error wrapping
// ErrInvalidKey for an empty key or one longer than MaxKeyLen, ErrStopped
// after Stop, and, once the key is removed, an error wrapping ErrRunTimeout
// if a RunAsMasterByKey function of key had not returned within
// WaitTimeout. Removing a key the node does not hold does nothing and
// returns nil.
func (m *Msc) RemoveKey(key string) error { return m.changeKeys(false, key) }

// RemoveKeys removes several keys at once, as RemoveKey does each. If a
// key is invalid it removes none of them and returns an error wrapping
// ErrInvalidKey that names the first; it returns ErrStopped after Stop,
// and ErrRunTimeout as RemoveKey does. It blocks as RemoveKey does,
// waiting for the RunAsMasterByKey functions of all the keys at once.
func (m *Msc) RemoveKeys(keys ...string) error { return m.changeKeys(false, keys...) }

func (m *Msc) changeKeys(add bool, keys ...string) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		if m.stopped() {
			return ErrStopped
		}
		return nil
	}
	if add {
		if !m.call(func(e *elector) { e.setKeys(keys, nil) }) {
			return ErrStopped
		}
		return nil
	}
	// As Stop does: first give up the masterships of the keys while still
	// holding them, so that no peer takes over, and wait (at most
	// WaitTimeout) for their RunAsMasterByKey functions to return; then
	// remove them.
	if !m.call(func(e *elector) {
		e.core.ResignKeys(mono(), keys)
		e.apply()
	}) {
		return ErrStopped
	}
	returned := m.waitRuns(m.cfg.WaitTimeout, keys...)
	if !m.call(func(e *elector) { e.setKeys(nil, keys) }) {
		return ErrStopped
	}
	if !returned {
		return fmt.Errorf("%w: a RunAsMasterByKey function of %q", ErrRunTimeout, keys)
	}
	return nil
}

// Keys returns the keys this node competes for, sorted. It waits for the
// elector (microseconds).
func (m *Msc) Keys() []string {
	var keys []string
	m.call(func(e *elector) {
		keys = append(keys, e.core.Keys()...)
	})
	slices.Sort(keys)
	return keys
}
