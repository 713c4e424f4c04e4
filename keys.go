package msc

import "slices"

// AddKey makes this node compete for key. Mastership is re-elected and
// peers are told at once. Without Quorum, when AddKey returns,
// IsMasterByKey reflects the new key (unless a live peer masters it: then
// this node takes over once that one has let it go, a message later);
// with Quorum, the node is master of it once a quorum has acknowledged
// its claim, a round trip later. An empty key, or one longer than
// MaxKeyLen, is ignored and reported to OnError.
func (m *Msc) AddKey(key string) { m.changeKeys(true, key) }

// AddKeys adds several keys at once: one election and one message to the
// peers, where AddKey in a loop would cost one each.
func (m *Msc) AddKeys(keys ...string) { m.changeKeys(true, keys...) }

// RemoveKey stops this node competing for key; peers are told at once.
// If this node is master of key, it first gives the mastership up while
// still holding the key, so that no peer takes over until the
// RunAsMasterByKey functions of key have returned (at most WaitTimeout).
func (m *Msc) RemoveKey(key string) { m.changeKeys(false, key) }

// RemoveKeys removes several keys at once.
func (m *Msc) RemoveKeys(keys ...string) { m.changeKeys(false, keys...) }

func (m *Msc) changeKeys(add bool, keys ...string) {
	if add {
		valid := keys[:0:0]
		for _, k := range keys {
			if err := checkKey(k); err != nil {
				m.report(err)
				continue
			}
			valid = append(valid, k)
		}
		keys = valid
	}
	if len(keys) == 0 {
		return
	}
	if add {
		m.call(func(e *elector) { e.setKeys(keys, nil) })
		return
	}
	// As Stop does: first give up the masterships of the keys while still
	// holding them, so that no peer takes over, and wait (at most
	// WaitTimeout) for their RunAsMasterByKey functions to return; then
	// remove them.
	m.call(func(e *elector) {
		e.core.ResignKeys(mono(), keys)
		e.apply()
	})
	m.waitRuns(m.cfg.WaitTimeout, keys...)
	m.call(func(e *elector) { e.setKeys(nil, keys) })
}

// Keys returns the keys this node competes for, sorted.
func (m *Msc) Keys() []string {
	var keys []string
	m.call(func(e *elector) {
		keys = append(keys, e.core.Keys()...)
	})
	slices.Sort(keys)
	return keys
}
