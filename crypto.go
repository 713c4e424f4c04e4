package msc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// Key derivation. These strings and numbers are part of the wire format:
// nodes that disagree on them cannot talk. See the README's wire section.
const (
	// kdfSalt is the PBKDF2 salt that turns a passphrase into a long-term
	// key. It is fixed so that every node derives the same key.
	kdfSalt = "msc-go/v1 passphrase"
	// kdfIter is the PBKDF2-HMAC-SHA256 iteration count.
	kdfIter = 4096
	// sessionInfo is the HKDF context for a connection's session key.
	sessionInfo = "msc-go/v1 session"
)

// keySizes maps an Algorithm to its AES key size in bytes (0: no crypto).
var keySizes = map[string]int{"aes128": 16, "aes192": 24, "aes256": 32, "no": 0}

// algIDs are the algorithm numbers exchanged in the handshake, so that a
// mismatch gets a clear error. ONLY APPEND.
var algIDs = map[string]byte{"no": 0, "aes128": 1, "aes192": 2, "aes256": 3}

// suite is an algorithm with its long-term key, derived once.
type suite struct {
	alg    string
	id     byte
	key    []byte   // nil for "no"; seals, and opens
	accept [][]byte // more keys that open (Options.AcceptKeys): key rotation
}

// withAccept returns a copy of s that also opens frames sealed with the
// keys derived from passphrases.
func (s *suite) withAccept(passphrases []string) (*suite, error) {
	c := *s
	c.accept = nil
	if s.key == nil {
		return &c, nil
	}
	for _, p := range passphrases {
		a, err := newSuite(s.alg, p)
		if err != nil {
			return nil, err
		}
		c.accept = append(c.accept, a.key)
	}
	return &c, nil
}

// withKeys returns a copy of s that also opens frames sealed with keys
// (long-term keys of s's algorithm), skipping those it has already.
func (s *suite) withKeys(keys [][]byte) *suite {
	c := *s
	c.accept = slices.Clone(s.accept)
	if s.key == nil {
		return &c
	}
	for _, k := range keys {
		if !c.has(k) {
			c.accept = append(c.accept, k)
		}
	}
	return &c
}

// has reports whether s seals or opens with the long-term key k.
func (s *suite) has(k []byte) bool {
	if bytes.Equal(s.key, k) {
		return true
	}
	for _, a := range s.accept {
		if bytes.Equal(a, k) {
			return true
		}
	}
	return false
}

// sameKey reports whether s seals as o does: same algorithm, same key.
func (s *suite) sameKey(o *suite) bool { return s.id == o.id && bytes.Equal(s.key, o.key) }

// acceptAEADs returns the session AEADs of the accepted keys.
func (s *suite) acceptAEADs(dialerNonce, listenerNonce []byte) ([]cipher.AEAD, error) {
	var out []cipher.AEAD
	for _, k := range s.accept {
		a, err := (&suite{key: k}).sessionAEAD(dialerNonce, listenerNonce)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func newSuite(alg, passphrase string) (*suite, error) {
	size, ok := keySizes[alg]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAlgorithm, alg)
	}
	s := &suite{alg: alg, id: algIDs[alg]}
	if size == 0 {
		return s, nil
	}
	k, err := pbkdf2.Key(sha256.New, passphrase, []byte(kdfSalt), kdfIter, size)
	if err != nil {
		return nil, fmt.Errorf("msc: deriving key: %w", err)
	}
	s.key = k
	return s, nil
}

// sessionAEAD derives the key of one connection from the long-term key and
// both handshake nonces, and returns its AEAD (nil for "no"). Every
// connection thus has its own key: a frame recorded on one connection does
// not open on another.
func (s *suite) sessionAEAD(dialerNonce, listenerNonce []byte) (cipher.AEAD, error) {
	if s.key == nil {
		return nil, nil
	}
	salt := make([]byte, 0, len(dialerNonce)+len(listenerNonce))
	salt = append(append(salt, dialerNonce...), listenerNonce...)
	k, err := hkdf.Key(sha256.New, s.key, salt, sessionInfo, len(s.key))
	if err != nil {
		return nil, fmt.Errorf("msc: deriving session key: %w", err)
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Directions of a connection: the nonce's first byte, so the two ends
// never use the same nonce under the session key.
const (
	dirFromDialer   byte = 0
	dirFromListener byte = 1
)

// sealer seals or opens the frames of one direction of one connection.
// Its nonce is (direction, sequence number); the sequence number is also
// in the authenticated header, so frames cannot be reordered or replayed.
type sealer struct {
	aead  cipher.AEAD   // nil: no encryption
	alts  []cipher.AEAD // receive only: other keys to try on the first frame
	nonce [12]byte
}

func newSealer(aead cipher.AEAD, dir byte) *sealer {
	s := &sealer{aead: aead}
	s.nonce[0] = dir
	return s
}

// seal appends the sealed plaintext to dst; hdr is authenticated.
func (s *sealer) seal(dst, hdr, plaintext []byte, seq uint64) []byte {
	if s.aead == nil {
		return append(dst, plaintext...)
	}
	binary.BigEndian.PutUint64(s.nonce[4:], seq)
	return s.aead.Seal(dst, s.nonce[:], plaintext, hdr)
}

// open authenticates hdr and ciphertext and appends the plaintext to dst.
func (s *sealer) open(dst, hdr, ciphertext []byte, seq uint64) ([]byte, error) {
	if s.aead == nil {
		return append(dst, ciphertext...), nil
	}
	binary.BigEndian.PutUint64(s.nonce[4:], seq)
	out, err := s.aead.Open(dst, s.nonce[:], ciphertext, hdr)
	if err != nil && len(s.alts) > 0 {
		// The first frame decides which accepted key the peer seals
		// with; the connection keeps it.
		for _, a := range s.alts {
			if out, err = a.Open(dst, s.nonce[:], ciphertext, hdr); err == nil {
				s.aead = a
				break
			}
		}
	}
	s.alts = nil
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// opener returns the AEAD, among the sealer's own and its alternatives,
// under which ciphertext opens, without changing the sealer; ok is false
// if none does.
func (s *sealer) opener(hdr, ciphertext []byte, seq uint64) (aead cipher.AEAD, ok bool) {
	p := *s
	if _, err := p.open(nil, hdr, ciphertext, seq); err != nil {
		return nil, false
	}
	return p.aead, true
}

// overhead is the number of bytes sealing adds.
func (s *sealer) overhead() int {
	if s.aead == nil {
		return 0
	}
	return s.aead.Overhead()
}
