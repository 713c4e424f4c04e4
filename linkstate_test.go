package msc

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/msc-go/msc/internal/core"
)

// TestSilenceWaitsOutALatePeer: a connection is closed as silent after
// silentAfter while the peer sends on time, but a peer whose own sends
// came late (its clock: a gap of more than 1.5 Intervals) is waited out
// until WaitTimeout for 10 Intervals of its clock after that.
func TestSilenceWaitsOutALatePeer(t *testing.T) {
	const iv, wait = 100 * time.Millisecond, 300 * time.Millisecond
	var f beatFilter
	at := int64(time.Hour) // the peer's clock
	frame := func(gap time.Duration) time.Duration {
		at += int64(gap)
		f.lateness(&beatView{sent: at}, iv)
		return f.silence(iv, wait)
	}
	for range 5 {
		if got := frame(iv); got != silentAfter(iv, wait) {
			t.Fatalf("on time: silence %v, want %v", got, silentAfter(iv, wait))
		}
	}
	if got := frame(iv + iv/2 + 1); got != wait {
		t.Fatalf("after a late send: silence %v, want %v", got, wait)
	}
	for i := range 9 {
		if got := frame(iv); got != wait {
			t.Fatalf("%d Intervals after a late send: silence %v, want %v", i+1, got, wait)
		}
	}
	if got := frame(iv); got != silentAfter(iv, wait) {
		t.Fatalf("10 Intervals after a late send: silence %v, want %v", got, silentAfter(iv, wait))
	}
	// A frame that arrives out of order (an earlier send time) is no gap.
	at -= int64(iv)
	if got := frame(0); got != silentAfter(iv, wait) {
		t.Fatalf("an older frame: silence %v, want %v", got, silentAfter(iv, wait))
	}
}

// recordHost is a host that keeps what the elector publishes.
type recordHost struct {
	beat *outBeat
	errs []error
}

func (h *recordHost) publishSnap(*core.Snapshot) {}
func (h *recordHost) publishBeat(b *outBeat)     { h.beat = b }
func (h *recordHost) setSent(int64)              {}
func (h *recordHost) report(err error)           { h.errs = append(h.errs, err) }
func (h *recordHost) wakeClient(string)          {}
func (h *recordHost) wakeClients()               {}
func (h *recordHost) keepApart(string)           {}
func (h *recordHost) pausedFor(time.Duration)    {}

// TestBulkDeltaForSkippedVersions: a connection a voter's new tables
// skipped (core kickSome) still carries the version last sent on every
// connection; the next heartbeat it sends is a delta from that version
// (outBeat.bulkDelta), which applied to it gives the state sent, not the
// whole state. A connection that carried the version before gets the
// plain delta, and one that carried an older version still (a reply
// between two kickSomes) a delta from it (outBeat.older).
func TestBulkDeltaForSkippedVersions(t *testing.T) {
	h := &recordHost{}
	e := &elector{host: h, voter: true}
	state := func(v uint64, table map[string]core.TableEntry) *core.Beat {
		return &core.Beat{UID: "v1", Start: 1, Inc: 1, Version: v, Keys: []string{"a"}, Table: table}
	}
	t1 := map[string]core.TableEntry{"k": {Rightful: "m1", Term: 1}, "j": {Rightful: "m3", Term: 1}}
	t2 := map[string]core.TableEntry{"k": {Rightful: "m2", Acting: "m2", Term: 2}, "j": {Rightful: "m3", Term: 1}}
	t3 := map[string]core.TableEntry{"k": {Rightful: "m2", Term: 2}, "j": {Rightful: "m3", Term: 1}, "i": {Rightful: "m4", Term: 1}}
	t4 := map[string]core.TableEntry{"k": {Rightful: "m2", Acting: "m2", Term: 2}, "i": {Rightful: "m4", Term: 1}}
	for i := range 20 { // entries that do not change: a delta is smaller than the whole
		for _, tb := range []map[string]core.TableEntry{t1, t2, t3, t4} {
			tb[fmt.Sprintf("same-%02d", i)] = core.TableEntry{Rightful: "m9", Acting: "m9", Term: 7}
		}
	}
	first, bulk, replied := newWriter(), newWriter(), newWriter()
	e.publishBeat(state(1, t1))
	var keys keyIntern // the receiver's: the keys of the whole state it read
	if _, err := decodeBeatIn(h.beat.fullForm(), nil, &keys); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*writer{&first, &bulk, &replied} {
		w.plan(h.beat, false, "")
		w.sent(h.beat)
	}
	e.sentAll = e.beat // a Kick: every connection carried version 1
	e.publishBeat(state(2, t2))
	for _, w := range []*writer{&first, &replied} { // the voters and the members concerned; a reply
		w.plan(h.beat, false, "")
		w.sent(h.beat)
	}
	e.publishBeat(state(3, t3))
	first.plan(h.beat, false, "")
	first.sent(h.beat)
	e.publishBeat(state(4, t4))
	if d := h.beat.bulkDelta(); d == nil || h.beat.bulkBase != 1 {
		t.Fatalf("version 4: bulk delta base %d (%d bytes); want one from version 1", h.beat.bulkBase, len(d))
	}
	for _, tc := range []struct {
		name string
		w    *writer
		base uint64
		from map[string]core.TableEntry
	}{{"sent version 3", &first, 3, t3}, {"skipped versions 2 and 3", &bulk, 1, t1}, {"skipped version 3", &replied, 2, t2}} {
		_, p := tc.w.plan(h.beat, false, "")
		if full := h.beat.fullForm(); len(p) >= len(full) {
			t.Fatalf("%s: %d bytes sent, the whole state is %d: want a delta", tc.name, len(p), len(full))
		}
		v, err := decodeBeatIn(p, nil, &keys)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v.base != tc.base {
			t.Fatalf("%s: delta from version %d, want %d", tc.name, v.base, tc.base)
		}
		got := maps.Clone(tc.from)
		for k, en := range v.table {
			if en == (core.TableEntry{}) {
				delete(got, k)
			} else {
				got[k] = en
			}
		}
		if !maps.Equal(got, t4) {
			t.Fatalf("%s: the delta applied gives %v, want %v", tc.name, got, t4)
		}
	}
	if len(h.errs) > 0 {
		t.Fatal(h.errs)
	}
}

// TestConcernedFrames: a voter's frames for a member alone (writer.plan
// with the member: its new table's first frames and its answers) carry,
// of the table, only the entries that name the member before or after;
// the others follow with the next frame for every connection, from the
// first version they were left out at (outBeat.completeFrom), even in a
// frame of the version the member has. Over random tables and sends, the
// receiver, applying each frame as core.Recv does, always holds every
// entry that names the member as it stands and none that names it
// stale, and holds the whole table after each frame for all.
func TestConcernedFrames(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	uids := []string{"m1", "m2", "m3", "m4", ""}
	const me = "m1"
	names := func(e core.TableEntry) bool { return e.Rightful == me || e.Acting == me }
	table := make(map[string]core.TableEntry)
	for i := range 400 {
		table[fmt.Sprintf("k%03d", i)] = core.TableEntry{Rightful: uids[rng.IntN(4)], Term: 1}
	}
	h := &recordHost{}
	e := &elector{host: h, voter: true, leftOut: minLeftOut}
	v := uint64(1)
	own := []string{"a"} // the voter's keys: a change sends the whole state
	publish := func() {
		e.publishBeat(&core.Beat{UID: "v1", Start: 1, Inc: 1, Version: v, Keys: own, Table: maps.Clone(table)})
	}
	publish()
	w := newWriter()
	var keys keyIntern // the receiver's
	var got map[string]core.TableEntry
	gotVer := uint64(0)
	apply := func(p []byte) (base uint64) {
		t.Helper()
		bv, err := decodeBeatIn(p, nil, &keys)
		if err != nil {
			t.Fatal(err)
		}
		if bv.flags&beatKeys == 0 {
			return 0
		}
		if bv.base == 0 {
			got = maps.Clone(bv.table)
		} else {
			if bv.base != gotVer {
				t.Fatalf("a delta from version %d on a connection that carried %d", bv.base, gotVer)
			}
			for k, en := range bv.table {
				if en == (core.TableEntry{}) {
					delete(got, k)
				} else {
					got[k] = en
				}
			}
		}
		gotVer = bv.version
		return bv.base
	}
	partial, completed := 0, 0
	for step := range 2000 {
		if rng.IntN(3) > 0 { // else the same version again
			for range 1 + rng.IntN(2*minLeftOut) { // sometimes too few to leave out
				k := fmt.Sprintf("k%03d", rng.IntN(440))
				switch en := table[k]; rng.IntN(6) {
				case 0:
					delete(table, k)
				case 1:
					en.Term++
					table[k] = en
				default:
					en.Rightful, en.Acting = uids[rng.IntN(4)], uids[rng.IntN(5)]
					table[k] = en
				}
			}
			v++
			publish()
		}
		switch rng.IntN(100) {
		case 0, 1: // more versions than the heartbeat keeps states (or changes) of
			for range 33 + rng.IntN(2)*100 {
				k := fmt.Sprintf("k%03d", rng.IntN(440))
				en := table[k]
				en.Term++
				table[k] = en
				v++
				publish()
			}
		case 2: // the voter's own keys change
			if len(own) == 1 {
				own = []string{"a", "b"}
			} else {
				own = []string{"a"}
			}
			v++
			publish()
		}
		if rng.IntN(3) > 0 {
			continue // versions pile up between two frames
		}
		member := me
		if rng.IntN(4) == 0 {
			member = "" // a kick: the frame for every connection
		}
		held := w.heldFrom
		_, p := w.plan(h.beat, false, member)
		if p == nil {
			t.Fatalf("step %d: nothing to send", step)
		}
		if base := apply(p); member == "" && held != 0 && base != 0 {
			completed++ // a delta, not the whole state
		}
		w.sent(h.beat)
		if member == "" {
			e.sentAll = e.beat
		} else if w.heldFrom != 0 && held == 0 {
			partial++
		}
		for k, en := range table {
			if names(en) && got[k] != en {
				t.Fatalf("step %d: %q names %s as %+v; the member holds %+v", step, k, me, en, got[k])
			}
		}
		for k, en := range got {
			if names(en) && table[k] != en {
				t.Fatalf("step %d: the member holds %q naming it as %+v; it is %+v", step, k, en, table[k])
			}
		}
		if member == "" && !maps.Equal(got, table) {
			t.Fatalf("step %d: after a frame for all, the member holds %v; the table is %v", step, got, table)
		}
	}
	if partial < 40 || completed < 40 {
		t.Fatalf("%d frames for the member alone left entries out, %d frames completed them: want both at least 40", partial, completed)
	}
	if len(h.errs) > 0 {
		t.Fatal(h.errs)
	}
}

// sendLink is a link that records how the elector sends on it.
type sendLink struct {
	id                core.ConnID
	named, askedNamed bool
	beats, concerned  []string // "" for sendBeat; the member for sendConcerned
}

func (l *sendLink) linkID() core.ConnID             { return l.id }
func (l *sendLink) linkServer() string              { return "" }
func (l *sendLink) linkTag() uint64                 { return uint64(l.id) }
func (l *sendLink) sendBeat(bool)                   { l.beats = append(l.beats, "") }
func (l *sendLink) sendConcerned(member string)     { l.concerned = append(l.concerned, member) }
func (l *sendLink) close()                          {}
func (l *sendLink) setEcho(int64)                   {}
func (l *sendLink) setLinked()                      {}
func (l *sendLink) setReply()                       {}
func (l *sendLink) setNamedOnly(on bool) (was bool) { was, l.askedNamed = l.askedNamed, on; return was }
func (l *sendLink) namedOnly() bool                 { return l.named }
func (l *sendLink) takeHeard() (int64, bool)        { return 0, false }

// TestNamedOnlyDispatch: a member asks every voter but its relay (the
// first in order) for only the entries of their tables that name it
// (core.NamedOnly, the header flag flagNamedOnly); a voter sends such a
// member, even in a Kick (every connection), the frame for it alone
// (sendConcerned), and another member the whole change (sendBeat).
func TestNamedOnlyDispatch(t *testing.T) {
	cfg := func(uid string) core.Config {
		return core.Config{UID: uid, Start: 10, Inc: 1, Interval: core.Duration(100 * time.Millisecond),
			Wait: core.Duration(300 * time.Millisecond), Voters: map[string]bool{"v1": true, "v2": true}}
	}
	now := int64(time.Second)
	voterBeat := func(uid string, start int64) *core.Msg {
		return &core.Msg{UID: uid, Start: start, Inc: 1, Sent: now, Version: 1, Full: true,
			Table: map[string]core.TableEntry{"k": {Rightful: "m1", Term: 1}}}
	}
	// The member: v1 (older) is its relay, v2 not.
	mc := core.New(cfg("m1"), []string{"k"}, nil)
	mc.Start(now, []string{"v1", "v2"})
	mlinks := []*sendLink{{id: 1}, {id: 2}}
	me := &elector{host: &recordHost{}, core: mc, links: map[core.ConnID]link{1: mlinks[0], 2: mlinks[1]}, leftOut: minLeftOut}
	mc.Up(now, 1, "v1", 1)
	mc.Up(now, 2, "v2", 2)
	mc.Recv(now, now, 1, voterBeat("v1", 1))
	mc.Recv(now, now, 2, voterBeat("v2", 2))
	me.apply()
	if mlinks[0].askedNamed || !mlinks[1].askedNamed {
		t.Fatalf("the member asks v1 (its relay) for the entries naming it alone: %v, v2: %v; want false, true",
			mlinks[0].askedNamed, mlinks[1].askedNamed)
	}
	// The voter v2: m1 asked, m2 did not.
	vc := core.New(cfg("v2"), nil, nil)
	vc.Start(now, nil)
	vlinks := []*sendLink{{id: 1, named: true}, {id: 2}}
	ve := &elector{host: &recordHost{}, core: vc, links: map[core.ConnID]link{1: vlinks[0], 2: vlinks[1]}, voter: true, leftOut: minLeftOut}
	for i, uid := range []string{"m1", "m2"} {
		id := core.ConnID(i + 1)
		vc.Up(now, id, "", uint64(id))
		vc.Recv(now, now, id, &core.Msg{UID: uid, Start: 20 + int64(i), Inc: 1, Sent: now, Version: 1, Full: true, Keys: []string{"k"}})
	}
	ve.apply()
	vc.Tick(now + int64(100*time.Millisecond)) // the Interval: a Kick
	ve.apply()
	if len(vlinks[0].concerned) == 0 || len(vlinks[0].beats) != 0 {
		t.Fatalf("to m1, which asked for the entries naming it alone: %d whole frames, %d for it alone; want only the latter",
			len(vlinks[0].beats), len(vlinks[0].concerned))
	}
	if len(vlinks[1].beats) == 0 || len(vlinks[1].concerned) != 0 {
		t.Fatalf("to m2 in a Kick: %d whole frames, %d for it alone; want only the former", len(vlinks[1].beats), len(vlinks[1].concerned))
	}
}

// TestTakeNamed: a voter's connection completes a member's copy of its
// table at once when the member stops asking for the entries that name
// it alone (flagNamedOnly cleared: it reads the keys' masters from this
// voter now), and only then.
func TestTakeNamed(t *testing.T) {
	var f beatFilter
	for i, step := range []struct{ named, changed, complete bool }{
		{false, false, false}, // a connection starts asking for everything
		{true, true, false},
		{true, false, false},
		{false, true, true},
		{false, false, false},
	} {
		if changed, complete := f.takeNamed(step.named); changed != step.changed || complete != step.complete {
			t.Fatalf("frame %d (flag %v): changed %v complete %v, want %v %v", i, step.named, changed, complete, step.changed, step.complete)
		}
	}
}
