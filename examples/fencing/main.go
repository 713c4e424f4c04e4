// Command fencing shows fencing tokens. The master writes to a store with
// the term of its mastership, and the store refuses any write whose term
// is lower than the highest it has seen, so that a master that was deposed
// (it was paused, cut off, or slow to notice) cannot overwrite what its
// successor wrote.
//
// Three nodes run in one process, with Quorum 2. Each runs RunAsMaster;
// whichever is master writes every 50ms, with the term RunAsMaster gave
// it. The program stops the master, shows the next one take over with a
// higher term, then replays one late write from the deposed master with
// its old term: the store refuses it. It exits within a few seconds, with
// status 1 if anything went otherwise.
//
//	go run ./examples/fencing
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/examples/internal/loopback"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fencing:", err)
		os.Exit(1)
	}
}

// errFenced is the store's answer to a write with an old term.
var errFenced = errors.New("refused: a newer master has written")

// store stands for the database the master writes to. A real store makes
// the same check in the same transaction as the write, e.g.
//
//	UPDATE jobs SET state = $1, term = $2 WHERE id = $3 AND term <= $2
type store struct {
	mu      sync.Mutex
	highest uint64 // the highest term seen
	value   string
	writes  map[string]int // accepted writes, by writer
}

func newStore() *store { return &store{writes: make(map[string]int)} }

// write stores value, written by who with term, unless a write with a
// higher term came first.
func (s *store) write(who string, term uint64, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if term < s.highest {
		return fmt.Errorf("%w (term %d < %d)", errFenced, term, s.highest)
	}
	s.highest, s.value = term, value
	s.writes[who]++
	return nil
}

// state returns the highest term seen and how many writes who made.
func (s *store) state(who string) (highest uint64, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.highest, s.writes[who]
}

// printer prints numbered lines from several goroutines.
type printer struct {
	mu    sync.Mutex
	out   io.Writer
	start time.Time
}

func (p *printer) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "[%5.3fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// run is the whole demonstration; it returns an error if the store did
// not fence as it should.
func run(out io.Writer) error {
	p := &printer{out: out, start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a safety net
	defer cancel()

	// Three nodes on 127.0.0.1, node0 the oldest, with Quorum 2.
	// WaitTimeout is generous: a graceful Stop hands over at once
	// whatever its value, and a busy machine does not make a master step
	// down for want of a quorum.
	nodes, err := loopback.Nodes(3, msc.Options{
		Key:         "fencing example passphrase",
		Interval:    50 * time.Millisecond,
		WaitTimeout: time.Second,
		Quorum:      2,
	})
	if err != nil {
		return err
	}
	for _, m := range nodes {
		if err := m.Start(); err != nil {
			return err
		}
		defer m.Stop()
	}
	p.say("3 nodes on 127.0.0.1, Quorum 2; each runs RunAsMaster, the master writes every 50ms with its term")

	st := newStore()
	var (
		mu    sync.Mutex
		terms = make(map[string]uint64) // each node's last term as master
		wg    sync.WaitGroup
	)
	for _, m := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := m.RunAsMaster(ctx, func(ctx context.Context, term uint64) {
				mu.Lock()
				terms[m.UID()] = term
				mu.Unlock()
				p.say("%s: master now, term %d", m.UID(), term)
				work(ctx, p, st, m.UID(), term)
			})
			p.say("%s: RunAsMaster returned: %v", m.UID(), err)
		}()
	}

	// Let the first master write a few times.
	var old *msc.Msc
	if !waitUntil(ctx, func() bool {
		for _, m := range nodes {
			if _, n := st.state(m.UID()); n >= 5 && m.IsMaster() {
				old = m
				return true
			}
		}
		return false
	}) {
		return errors.New("no master wrote 5 times")
	}
	mu.Lock()
	oldTerm := terms[old.UID()]
	mu.Unlock()

	// Stop it: its RunAsMaster context is cancelled and its fn returns
	// before the others are told it leaves; the next node takes over.
	p.say("stopping %s, the master (term %d)", old.UID(), oldTerm)
	old.Stop()

	var next *msc.Msc
	if !waitUntil(ctx, func() bool {
		for _, m := range nodes {
			if _, n := st.state(m.UID()); m != old && n >= 3 && m.IsMaster() {
				next = m
				return true
			}
		}
		return false
	}) {
		return errors.New("no other master wrote 3 times")
	}
	newTerm, _ := st.state(next.UID())
	if newTerm <= oldTerm {
		return fmt.Errorf("%s took over, but the store's highest term is %d, not higher than %d", next.UID(), newTerm, oldTerm)
	}
	p.say("%s took over: the store has seen term %d, higher than %d", next.UID(), newTerm, oldTerm)

	// The deposed master, had it been paused rather than stopped, would
	// wake up still holding its old term and write once more.
	p.say("%s, deposed, tries a late write with its old term %d", old.UID(), oldTerm)
	err = st.write(old.UID(), oldTerm, old.UID()+" late write")
	if !errors.Is(err, errFenced) {
		return fmt.Errorf("the store answered the late write with %v, want it refused", err)
	}
	p.say("store: %v", err)

	cancel() // every RunAsMaster returns
	wg.Wait()
	highest, _ := st.state("")
	st.mu.Lock()
	value := st.value
	st.mu.Unlock()
	p.say("store: highest term %d, value %q: the late write did not overwrite it", highest, value)
	return nil
}

// work is the master's job: write to the store every 50ms with the term
// of this mastership, until the mastership ends or the store refuses.
func work(ctx context.Context, p *printer, st *store, uid string, term uint64) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			p.say("%s: mastership of term %d over", uid, term)
			return
		case <-t.C:
		}
		value := fmt.Sprintf("%s write #%d", uid, n)
		if err := st.write(uid, term, value); err != nil {
			p.say("%s: %q with term %d: %v; stepping aside", uid, value, term, err)
			return
		}
		p.say("%s: %q with term %d: accepted", uid, value, term)
	}
}

// waitUntil polls cond until it holds or ctx is done.
func waitUntil(ctx context.Context, cond func() bool) bool {
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}
