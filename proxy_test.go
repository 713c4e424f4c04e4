package msc

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/msc-go/msc/internal/relay"
)

// TestHeaderEncryptedOnTheWire taps the link: with HeaderEncrypted no
// node's UID travels in clear; without it, the UIDs are readable.
func TestHeaderEncryptedOnTheWire(t *testing.T) {
	for _, hidden := range []bool{false, true} {
		t.Run(fmt.Sprintf("HeaderEncrypted=%v", hidden), func(t *testing.T) {
			var mu sync.Mutex
			var wire []byte
			c, r := relayedPair(t, func(i int, o *Options) { o.HeaderEncrypted = hidden; o.Keys = []string{"secret-key-name"} })
			r.SetFilter(func(_ int, _ relay.Dir, src io.Reader) io.Reader {
				return io.TeeReader(src, writerFunc(func(b []byte) {
					mu.Lock()
					wire = append(wire, b...)
					mu.Unlock()
				}))
			})
			c.start()
			c.waitMaster(c.nodes[0])
			mu.Lock()
			defer mu.Unlock()
			for _, s := range []string{"node0", "node1"} {
				if got := bytes.Contains(wire, []byte(s)); got == hidden {
					t.Errorf("%q in clear on the wire: %v", s, got)
				}
			}
			if bytes.Contains(wire, []byte("secret-key-name")) {
				t.Error("a key name travels in clear")
			}
		})
	}
}

// writerFunc is an io.Writer that hands each write to a function.
type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) {
	f(b)
	return len(b), nil
}
