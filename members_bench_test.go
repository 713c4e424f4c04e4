package msc

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"github.com/msc-go/msc/internal/core"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkMembers runs voters and members in one process on loopback
// (Options.Voters; each member is given the voters' addresses only) and
// reports: the time until every node names the same global master and,
// for every key, exactly one holder is master of it and every holder
// names it, each with the master's term (converge-ms); over the steady
// window, the CPU of the whole process (cores), frames and bytes per
// second, bytes per frame, and the mastership changes, terms included
// (it fails on any); then the failover when the master
// voter is killed (its sockets closed: voter-failover-ms, until every
// node names the new master) and when 50 members that are masters of keys
// are killed at once (member-failover-ms, until every key they held has a
// new master that every holder names), each with the CPU of the whole
// process meanwhile (-cpu-ms, the checks' included); the CPU of the
// whole process until convergence (converge-cpu-s, the checks' share
// included: they sleep four times as long as they take) and the voters'
// table entries the members decoded until then (converge-entries: a
// member of 1,000 keys decodes at least 1,000 from each voter); and the
// process's peak RSS. Run:
//
//	go test -run '^$' -bench Members -benchtime 1x [-scale.window 30s]
//
// The cases: 3 voters + 297 members at Interval 100 ms, without keys
// (300) and holding the same 100 keys with Balance (300x100); 3 voters +
// 997 members holding the same 1,000 keys with Balance at Interval 500
// ms (1000x1000); and the sizes -members.sizes adds (nodes x keys, 3
// voters, as 1000x1000: -members.sizes 400x1000,600x1000). With
// -members.trace it logs the cluster's progress every second until it
// converges (traceMembers).
func BenchmarkMembers(b *testing.B) {
	type size struct {
		name           string
		voters, n, k   int
		interval, wait time.Duration
	}
	sizes := []size{
		{"300", 3, 300, 0, 100 * time.Millisecond, 300 * time.Millisecond},
		{"300x100", 3, 300, 100, 100 * time.Millisecond, 300 * time.Millisecond},
		{"1000x1000", 3, 1000, 1000, 500 * time.Millisecond, 1500 * time.Millisecond},
	}
	for _, s := range strings.Split(*membersSizes, ",") {
		var n, k int
		if s == "" {
			continue
		}
		if _, err := fmt.Sscanf(s, "%dx%d", &n, &k); err != nil || n <= 3 || k < 0 {
			b.Fatalf("-members.sizes: %q is not NODESxKEYS, more than 3 nodes", s)
		}
		sizes = append(sizes, size{s, 3, n, k, 500 * time.Millisecond, 1500 * time.Millisecond})
	}
	for _, bc := range sizes {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				membersRun(b, bc.voters, bc.n, bc.k, bc.interval, bc.wait, *scaleWindow)
			}
		})
	}
}

var (
	membersSizes = flag.String("members.sizes", "", "BenchmarkMembers: more cases, NODESxKEYS[,...], 3 voters, Interval 500 ms")
	membersTrace = flag.Bool("members.trace", false, "BenchmarkMembers: log the cluster's progress every second until it converges")
)

func membersRun(b *testing.B, v, n, k int, interval, wait time.Duration, window time.Duration) {
	keys := make([]string, k)
	for i := range keys {
		keys[i] = fmt.Sprintf("job-%04d", i)
	}
	// pauses counts the nodes' re-joins after a pause, starved (the
	// warning Logger gets), for the failure messages; voterPauses, the
	// voters' alone.
	var pauses, voterPauses atomic.Int64
	logger := slog.New(slog.NewTextHandler(pauseCounter{&pauses}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	voterLogger := slog.New(slog.NewTextHandler(pauseCounter{&pauses, &voterPauses}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := newMembers(b, v, n, false, func(i int, o *Options) {
		o.Logger = logger
		if i < v {
			o.Logger = voterLogger
		}
		o.Interval, o.WaitTimeout = interval, wait
		o.Keys = nil
		if i >= v {
			o.Keys = keys
		}
	})
	// agreed: every running node names master as the global master (and
	// it alone says so), and for every key one running holder is master
	// and every running holder names it; each with the master's term (a
	// term still on its way would change the nodes' state after: the
	// steady window counts that).
	agreed := func(master *Msc) bool {
		if !c.agreed(master) {
			return false
		}
		// Each node's snapshot is read once, by key position (the keys
		// are sorted, as a node's index): at 1,000 x 1,000 a check by
		// key name took about 35 ms of a core, polled every 5 ms.
		run := c.running()
		masters := make([]*Msc, len(keys))
		terms := make([]uint64, len(keys))
		snaps := make([]*core.Snapshot, len(run)) // of the nodes that hold the keys
		for i, m := range run {
			if m.Term() != master.Term() {
				return false
			}
			if len(m.cfg.Keys) == 0 {
				continue
			}
			s := m.snap.Load()
			if !slices.Equal(s.KI.List, keys) {
				return false
			}
			snaps[i] = s
			for j := range keys {
				if ks := s.At(j); ks.Master && m.valid(ks.Lease) && !m.cfg.Observer {
					if masters[j] != nil {
						return false
					}
					masters[j], terms[j] = m, ks.Term
				}
			}
		}
		for _, s := range snaps {
			for j := range keys {
				if s == nil {
					break
				}
				if ks := s.At(j); masters[j] == nil || ks.UID != masters[j].UID() || ks.Term != terms[j] {
					return false
				}
			}
		}
		return true
	}
	// A check reads every node's snapshot: the poll sleeps pace times as
	// long as the check took (at least 5 ms), so that it takes at most
	// 1/(pace+1) of a core from the cluster it measures.
	poll := func(what string, pace time.Duration, cond func() bool) time.Duration {
		t0 := time.Now()
		for {
			c0 := time.Now()
			if cond() {
				break
			}
			took := time.Since(c0)
			if time.Since(t0) > 2*time.Minute {
				b.Fatalf("no %s in 2 minutes (%d re-joins after a pause since the start, %d of them voters')", what, pauses.Load(), voterPauses.Load())
			}
			time.Sleep(max(5*time.Millisecond, pace*took))
		}
		return time.Since(t0)
	}
	t0, cpuStart := time.Now(), cpuTime()
	c.start()
	stopTrace := func() {}
	if *membersTrace {
		stopTrace = traceMembers(b, c.nodes, t0, cpuStart, &pauses, &voterPauses)
		defer stopTrace()
	}
	poll("convergence", 4, func() bool { return agreed(c.nodes[0]) })
	stopTrace()
	b.ReportMetric(float64(time.Since(t0))/float64(time.Millisecond), "converge-ms")
	b.ReportMetric((cpuTime() - cpuStart).Seconds(), "converge-cpu-s")
	var entries uint64 // the voters' table entries the members decoded to converge
	for _, m := range c.nodes {
		entries += m.entriesIn.Load()
	}
	b.ReportMetric(float64(entries), "converge-entries")

	changes, pauses0 := recordChanges(c.nodes, time.Now()), pauses.Load()
	var errMu sync.Mutex
	var errs []string // the first errors reported (OnError) in the window
	errAt := time.Now()
	for _, m := range c.nodes {
		m.OnError(func(err error) {
			errMu.Lock()
			defer errMu.Unlock()
			if len(errs) < 8 {
				errs = append(errs, fmt.Sprintf("%.1fms %s: %v", float64(time.Since(errAt))/1e6, m.UID(), err))
			}
		})
	}
	f0, by0 := sent(c.nodes)
	cpu0, start := cpuTime(), time.Now()
	time.Sleep(window) // a measurement window, not a synchronisation
	cpu, elapsed := cpuTime()-cpu0, time.Since(start)
	f1, by1 := sent(c.nodes)
	if moved := changes.n.Load(); moved != 0 || !agreed(c.nodes[0]) {
		errMu.Lock()
		defer errMu.Unlock()
		b.Fatalf("%d mastership changes during the steady window, %d re-joins after a pause in it (%d before); the first:\n%s\nthe first errors in it:\n%s",
			moved, pauses.Load()-pauses0, pauses0, changes.First(), strings.Join(errs, "\n"))
	}
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
	b.ReportMetric(float64(f1-f0)/elapsed.Seconds(), "frames/s")
	if f1 > f0 {
		b.ReportMetric(float64(by1-by0)/float64(f1-f0), "bytes/frame")
	}

	// The master voter dies.

	cpu0 = cpuTime()
	c.nodes[0].abort()
	b.ReportMetric(float64(poll("a new global master", 1, func() bool { return agreed(c.nodes[1]) }))/float64(time.Millisecond), "voter-failover-ms")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond), "voter-failover-cpu-ms")

	if k > 0 {
		// 50 members that are masters of keys die at once.
		var dead []*Msc
		for _, m := range c.nodes[v:] {
			if len(dead) == 50 {
				break
			}
			if len(m.MasterKeys()) > 0 {
				dead = append(dead, m)
			}
		}
		cpu0 = cpuTime()
		for _, m := range dead {
			go m.abort()
		}
		b.ReportMetric(float64(poll("new masters of the dead members' keys", 1, func() bool {
			for _, m := range dead {
				if m.snap.Load().Running {
					return false
				}
			}
			return agreed(c.nodes[1])
		}))/float64(time.Millisecond), "member-failover-ms")
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond), "member-failover-cpu-ms")
	}
	b.ReportMetric(rssMiB(), "peak-RSS-MiB")
	c.release()
}

// rssMiB returns the process's peak resident set (VmHWM), in MiB; 0 if
// unknown.
func rssMiB() float64 {
	s, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(s), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// BenchmarkElectRelay is one election on a voter (Options.Voters) of 3
// whose 997 live members hold the same 1,000 keys with Balance: what a
// voter of BenchmarkMembers/1000x1000 does for each batch of news.
func BenchmarkElectRelay(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("job-%04d", i)
	}
	now := int64(time.Second)
	voters := map[string]bool{"self": true, "v1": true, "v2": true}
	cfg := core.Config{UID: "self", Start: base.UnixNano(), Inc: 1, Interval: core.Duration(500 * time.Millisecond),
		Wait: core.Duration(1500 * time.Millisecond), Balance: true, Voters: voters}
	c := core.New(cfg, nil, nil)
	c.Start(now, nil)
	now += int64(2 * time.Second) // past the relay's wait after its start
	for i := range 997 {
		id := core.ConnID(i + 1)
		c.Up(now, id, "", uint64(i))
		c.Recv(now, now, id, &core.Msg{UID: fmt.Sprintf("member%d", i), Start: base.UnixNano() + int64(i+1), Inc: 1, Sent: 1, Version: 1, Full: true, Keys: keys})
	}
	c.Tick(now)
	if n := c.LiveCount(); n != 997 {
		b.Fatalf("%d live members, want 997", n)
	}
	if e := c.Inspect(now, "job-0000"); !e.Ready {
		b.Fatal("the voter is not ready")
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Elect(now)
	}
}

// BenchmarkElectMember is what a member holding 1,000 keys does for a
// voter's new table that changed one entry: take the frame in and elect
// (partial: only that key and the ones it claims are decided again;
// whole: every key, as with SetPartial(false)).
func BenchmarkElectMember(b *testing.B) {
	for _, partial := range []bool{true, false} {
		b.Run(fmt.Sprintf("partial=%v", partial), func(b *testing.B) {
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprintf("job-%04d", i)
			}
			voters := []string{"v0", "v1", "v2"}
			cfg := core.Config{UID: "self", Start: base.UnixNano(), Inc: 1, Interval: core.Duration(500 * time.Millisecond),
				Wait: core.Duration(1500 * time.Millisecond), Balance: true, Voters: map[string]bool{"v0": true, "v1": true, "v2": true}}
			c := core.New(cfg, keys, nil)
			c.SetPartial(partial)
			now := int64(time.Second)
			c.Start(now, voters)
			table := map[string]core.TableEntry{}
			for i, k := range keys {
				named := "other"
				if i%100 == 0 {
					named = "self"
				}
				table[k] = core.TableEntry{Rightful: named, Acting: named, Term: 1}
			}
			ver := uint64(1)
			for i, v := range voters {
				c.Up(now, core.ConnID(i+1), v, uint64(i))
				c.Recv(now, now, core.ConnID(i+1), &core.Msg{UID: v, Start: base.UnixNano() - int64(time.Hour) + int64(i), Inc: 1,
					Sent: now, Echo: c.Sent(), Version: ver, Full: true, Table: table})
			}
			c.Tick(now)
			if s := c.Snap(); !s.Ready || s.MasterUID != "v0" {
				b.Fatalf("not ready, or global master %q", s.MasterUID)
			}
			b.ReportAllocs()
			for n := 0; b.Loop(); n++ {
				ver++
				k := keys[n%len(keys)]
				e := core.TableEntry{Rightful: "other", Acting: "other", Term: uint64(n + 2)}
				c.Recv(now, now, 1, &core.Msg{UID: "v0", Start: base.UnixNano() - int64(time.Hour), Inc: 1, Sent: now, Echo: c.Sent(),
					Version: ver, Full: true, Table: map[string]core.TableEntry{k: e}, Base: ver - 1})
				c.Elect(now)
			}
		})
	}
}

// BenchmarkTakeTableDelta is what each member of BenchmarkMembers/1000x1000
// does with a voter's new table that changed 300 of its 1,000 entries (a
// batch of namings, as while the cluster converges): decode the frame as
// its connection does (keyIntern), take it in and recycle its map as the
// elector does, elect. 64 members take
// turns, each with 3 voters' tables, so that a member's state is out of
// the cache when its turn comes, as among 1,000 in one process.
func BenchmarkTakeTableDelta(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("job-%04d", i)
	}
	voters := []string{"v0", "v1", "v2"}
	const members = 64
	now := int64(time.Second)
	beat := func(v int, ver uint64, table map[string]core.TableEntry) *core.Beat {
		return &core.Beat{UID: voters[v], Start: base.UnixNano() - int64(time.Hour) + int64(v), Inc: 1, Version: ver,
			Claims: map[string]core.Claim{"": {Term: 1, Acting: v == 0}}, Known: map[string]uint64{}, Table: table}
	}
	table := make(map[string]core.TableEntry, len(keys))
	for i, k := range keys {
		uid := fmt.Sprintf("member-%04d", (i*7)%997)
		table[k] = core.TableEntry{Rightful: uid, Acting: uid, Term: 1}
	}
	whole := make([][]byte, len(voters))
	for v := range voters {
		p, err := encodeBeat(beat(v, 1, table), true)
		if err != nil {
			b.Fatal(err)
		}
		whole[v] = p
	}
	// stamp sets a frame's send time and echo, as the writer does.
	uidEnd := 1 + len(voters[0])
	stamp := func(p []byte, c *core.Core) {
		binary.BigEndian.PutUint64(p[uidEnd:], uint64(now))
		binary.BigEndian.PutUint64(p[uidEnd+8:], uint64(c.Sent()))
	}
	type member struct {
		c       *core.Core
		filters [3]beatFilter
	}
	ms := make([]*member, members)
	for j := range ms {
		cfg := core.Config{UID: fmt.Sprintf("member-%04d", 997+j), Start: base.UnixNano() + int64(j), Inc: 1,
			Interval: core.Duration(500 * time.Millisecond), Wait: core.Duration(1500 * time.Millisecond), Balance: true,
			Voters: map[string]bool{"v0": true, "v1": true, "v2": true}}
		m := &member{c: core.New(cfg, keys, nil)}
		m.c.Start(now, voters)
		for v := range voters {
			m.filters[v].keys.own = m.c.Snap().KI
			m.c.Up(now, core.ConnID(v+1), voters[v], uint64(v))
			stamp(whole[v], m.c)
			bv, err := m.filters[v].decode(whole[v], nil)
			if err != nil {
				b.Fatal(err)
			}
			msg := bv.msg(voters[v])
			m.c.Recv(now, now, core.ConnID(v+1), &msg)
		}
		m.c.Tick(now)
		if s := m.c.Snap(); !s.Ready || s.MasterUID != "v0" {
			b.Fatalf("member %d not ready, or global master %q", j, s.MasterUID)
		}
		ms[j] = m
	}
	old, ver := beat(0, 1, table), uint64(1)
	var delta []byte
	var last *member
	lastKey, lastUID := "", ""
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		m := ms[n%members]
		last = m
		if n%members == 0 {
			// v0's next table: 300 entries name other members.
			next := maps.Clone(old.Table)
			for i := range 300 {
				j := (ver*300 + uint64(i)) % uint64(len(keys))
				uid := fmt.Sprintf("member-%04d", (j*7+ver)%997)
				next[keys[j]] = core.TableEntry{Rightful: uid, Acting: uid, Term: ver + 1}
				lastKey, lastUID = keys[j], uid
			}
			ver++
			nb := beat(0, ver, next)
			var err error
			if delta, err = encodeDelta(nb, old, old.Version); err != nil {
				b.Fatal(err)
			}
			old = nb
		}
		stamp(delta, m.c)
		bv, err := m.filters[0].decode(delta, nil)
		if err != nil {
			b.Fatal(err)
		}
		msg := bv.msg(voters[0])
		m.c.Recv(now, now, 1, &msg)
		recycleTable(&msg) // as the elector does
		m.c.Elect(now)
	}
	if st := last.c.Snap().State(lastKey); st.UID != lastUID {
		b.Fatalf("%s: the member names %q, the voters' tables %q", lastKey, st.UID, lastUID)
	}
}

// pauseCounter counts the log lines of a node that re-joins after a
// pause (elector: "msc: paused, re-joining") in each of its counters.
type pauseCounter []*atomic.Int64

func (w pauseCounter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("paused")) {
		for _, n := range w {
			n.Add(1)
		}
	}
	return len(p), nil
}

// traceMembers logs, every second until stop is first called, how the
// cluster of nodes gets on: the process's CPU since cpuStart, the
// voters' table entries the members decoded, the re-joins after a pause
// (the voters'), the nodes ready, those that name the first voter's
// global master, and the keys' masters: a cluster that does not converge
// shows why (-members.trace).
func traceMembers(b *testing.B, nodes []*Msc, t0 time.Time, cpuStart time.Duration, pauses, voterPauses *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			var entries uint64
			ready, naming, masters := 0, 0, 0
			master := nodes[0].snap.Load().MasterUID
			for _, m := range nodes {
				entries += m.entriesIn.Load()
				s := m.snap.Load()
				if s.Ready {
					ready++
				}
				if master != "" && s.MasterUID == master {
					naming++
				}
				for j := range s.Len() {
					if s.At(j).Master {
						masters++
					}
				}
			}
			b.Logf("%5.1fs: %5.1f CPU-s, %d entries decoded, %d re-joins (%d voters'), %d of %d ready, %d name %q, %d key masters",
				time.Since(t0).Seconds(), (cpuTime() - cpuStart).Seconds(), entries, pauses.Load(), voterPauses.Load(),
				ready, len(nodes), naming, master, masters)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}
