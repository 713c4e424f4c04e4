package msc

import "fmt"

// SetKey changes, at run time, the passphrase this node seals with, and
// the passphrases it accepts besides (Options.AcceptKeys). New connections
// use them; established ones keep their session. With AcceptKeys, a
// cluster rotates its key without downtime: first every node accepts the
// new key, then each seals with it, then the old is dropped.
//
// The key applies to the listener and to every server that uses the
// node's key: those added without a Key, and those whose ServerConfig.Key
// (with the node's Algorithm) is the key being replaced, given explicitly
// or not; from then on they follow the node's key. A server added with
// another key of its own keeps sealing with that key; the passphrases in
// accept also open frames on its connections. Whatever key a peer dials
// this node with, among those it accepts, this node answers in that key.
//
// It does not block. With Options.TLS there is no passphrase: SetKey
// returns an error wrapping ErrInvalidOption; certificates rotate through
// the tls.Config's callbacks. It returns ErrEmptyKey for an empty key
// (with an Algorithm other than "no"), and ErrStopped after Stop.
func (m *Msc) SetKey(key string, accept ...string) error {
	if m.cfg.tls != nil {
		return fmt.Errorf("%w: SetKey on a node that uses TLS", ErrInvalidOption)
	}
	if err := checkAlgorithm(m.cfg.Algorithm, key); err != nil {
		return err
	}
	s, err := newSuite(m.cfg.Algorithm, key)
	if err != nil {
		return err
	}
	if s, err = s.withAccept(accept); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == stateStopped {
		return ErrStopped
	}
	old := m.suite.Swap(s)
	for _, cl := range m.clients {
		if own := cl.suite.Load(); own != nil && own.sameKey(old) {
			cl.suite.Store(nil)
		}
	}
	return nil
}
