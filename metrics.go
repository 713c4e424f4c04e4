package msc

import (
	"errors"
	"expvar"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/msc-go/msc/internal/core"
)

// metrics holds the counters that Status does not: errors by cause,
// reconnections, changes of master.
type metrics struct {
	errs       [len(errCauses) + 1]atomic.Uint64 // by position in errCauses; last: other
	reconnects atomic.Uint64

	// mu guards the fields below it. The elector writes them (countChanges).
	mu      sync.Mutex
	changes map[string]uint64 // key ("" global) → changes of its master
	last    map[string]string // key → the master last known, "" never
}

// errCauses are the causes msc_errors_total counts, in the order a
// cause is looked for in an error.
var errCauses = [...]struct {
	err  error
	name string
}{
	{ErrAuth, "auth"},
	{ErrBadFrame, "bad_frame"},
	{ErrFrameTooLarge, "frame_too_large"},
	{ErrVersion, "version"},
	{ErrAlgorithmMismatch, "algorithm_mismatch"},
	{ErrPeerSilent, "silent"},
	{ErrUnreachable, "unreachable"},
	{ErrDuplicateUID, "duplicate_uid"},
	{ErrKeySetTooLarge, "key_set_too_large"},
	{ErrDiscovery, "discovery"},
	{errTooManyInbound, "too_many_inbound"},
	{ErrQuorum, "quorum"},
}

// countError counts an error reported to OnError (before rate-limiting).
func (mt *metrics) countError(err error) {
	for i, c := range errCauses {
		if errors.Is(err, c.err) {
			mt.errs[i].Add(1)
			return
		}
	}
	mt.errs[len(errCauses)].Add(1)
}

// countChanges counts, per key, each time the master this node knows
// passes to another node; a master unknown for a while (a pause, a
// restart of the election) and then the same again is no change. It runs
// on the elector, for each snapshot published.
func (mt *metrics) countChanges(old, s *core.Snapshot) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if mt.changes == nil {
		mt.changes, mt.last = make(map[string]uint64), make(map[string]string)
	}
	mt.note("", s.MasterUID)
	if old.KI == s.KI {
		// Only the keys whose state changed; the others were noted
		// when they last changed.
		s.Diff(old, func(j int, now, was core.KeyState) {
			if now.UID != was.UID {
				mt.note(s.KI.List[j], now.UID)
			}
		})
		return
	}
	for i := range s.Len() {
		mt.note(s.KI.List[i], s.At(i).UID)
	}
	for k := range mt.last { // keys removed: forget them
		if _, ok := s.KI.Idx[k]; !ok && k != "" {
			delete(mt.last, k)
			delete(mt.changes, k)
		}
	}
}

func (mt *metrics) note(key, uid string) {
	if uid == "" {
		return
	}
	if last := mt.last[key]; last != uid {
		if last != "" {
			mt.changes[key]++
		}
		mt.last[key] = uid
	}
}

// figures are the numbers /metrics and PublishExpvar show.
type figures struct {
	keys       []string // "" first, then this node's keys, sorted
	isMaster   []bool   // by keys
	term       []uint64 // by keys
	changes    []uint64 // by keys
	live, dead int
	healthy    bool
	framesIn   uint64
	framesOut  uint64
	bytesIn    uint64
	bytesOut   uint64
	errs       []uint64 // by errCauses, then other
	reconnects uint64
}

func (m *Msc) figures() figures {
	// Not Status, which copies every peer's keys on the elector: on a
	// voter of 1,000 members holding 1,000 keys each, a million strings
	// per scrape, while the elector waits.
	var s *core.Snapshot
	var live, dead int
	if !m.call(func(e *elector) {
		s = e.core.Snap()
		live, dead = e.core.PeerCounts(mono())
	}) {
		s = m.snap.Load() // stopped
	}
	f := figures{
		keys:       []string{""},
		isMaster:   []bool{m.IsMaster()},
		term:       []uint64{s.Term},
		healthy:    m.Healthy() == nil,
		framesIn:   m.framesIn.Load(),
		framesOut:  m.framesOut.Load(),
		bytesIn:    m.bytesIn.Load(),
		bytesOut:   m.bytesOut.Load(),
		reconnects: m.met.reconnects.Load(),
		live:       live,
		dead:       dead,
	}
	for i := range s.Len() {
		k := s.KI.List[i]
		f.keys = append(f.keys, k)
		f.isMaster = append(f.isMaster, m.IsMasterByKey(k))
		f.term = append(f.term, s.At(i).Term)
	}
	m.met.mu.Lock()
	for _, k := range f.keys {
		f.changes = append(f.changes, m.met.changes[k])
	}
	m.met.mu.Unlock()
	for i := range m.met.errs {
		f.errs = append(f.errs, m.met.errs[i].Load())
	}
	return f
}

func causeName(i int) string {
	if i < len(errCauses) {
		return errCauses[i].name
	}
	return "other"
}

// writeMetrics writes the figures in the Prometheus text exposition
// format, version 0.0.4.
func (f *figures) writeMetrics(w io.Writer) error {
	var b strings.Builder
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, escapeHelp(help), name, typ)
	}
	sample := func(name, label, value string, v uint64) {
		fmt.Fprintf(&b, "%s{%s=\"%s\"} %d\n", name, label, escapeLabel(value), v)
	}
	family("msc_is_master", "gauge", `1 if this node is master: key="" globally, else of that key (one series per key of this node).`)
	for i, k := range f.keys {
		sample("msc_is_master", "key", k, b2u(f.isMaster[i]))
	}
	family("msc_term", "gauge", "The fencing term of the mastership, global (key=\"\") and per key.")
	for i, k := range f.keys {
		sample("msc_term", "key", k, f.term[i])
	}
	family("msc_master_changes_total", "counter", "Times the master this node knows passed to another node, global and per key.")
	for i, k := range f.keys {
		sample("msc_master_changes_total", "key", k, f.changes[i])
	}
	family("msc_peers", "gauge", "Peers this node knows, by state: live, or dead (down, leaving, or restarted and not forgotten yet).")
	sample("msc_peers", "state", "live", uint64(f.live))
	sample("msc_peers", "state", "dead", uint64(f.dead))
	family("msc_healthy", "gauge", "1 while Healthy() is nil: the node's view of the cluster is fresh.")
	fmt.Fprintf(&b, "msc_healthy %d\n", b2u(f.healthy))
	family("msc_frames_total", "counter", "Heartbeat frames, received (in) and sent (out).")
	sample("msc_frames_total", "dir", "in", f.framesIn)
	sample("msc_frames_total", "dir", "out", f.framesOut)
	family("msc_bytes_total", "counter", "Bytes of heartbeat frames, received (in) and sent (out).")
	sample("msc_bytes_total", "dir", "in", f.bytesIn)
	sample("msc_bytes_total", "dir", "out", f.bytesOut)
	family("msc_errors_total", "counter", "Errors reported to OnError, by cause, counted before rate-limiting; unreachable counts outages, not attempts.")
	for i, n := range f.errs {
		sample("msc_errors_total", "cause", causeName(i), n)
	}
	family("msc_reconnects_total", "counter", "Connections to configured servers made again after one ended.")
	fmt.Fprintf(&b, "msc_reconnects_total %d\n", f.reconnects)
	_, err := io.WriteString(w, b.String())
	return err
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// escapeLabel escapes a label value for the text format: backslash,
// double quote and line feed; invalid UTF-8 becomes U+FFFD.
func escapeLabel(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return labelEscaper.Replace(s)
}

// escapeHelp escapes a HELP text: backslash and line feed.
func escapeHelp(s string) string { return helpEscaper.Replace(s) }

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

// expvarMap returns the figures in the form PublishExpvar shows.
func (f *figures) expvarMap(uid string) map[string]any {
	byKey := func(v func(i int) uint64) map[string]uint64 {
		out := make(map[string]uint64, len(f.keys))
		for i, k := range f.keys {
			out[k] = v(i)
		}
		return out
	}
	errs := make(map[string]uint64, len(f.errs))
	for i, n := range f.errs {
		errs[causeName(i)] = n
	}
	return map[string]any{
		"uid":            uid,
		"is_master":      byKey(func(i int) uint64 { return b2u(f.isMaster[i]) }),
		"term":           byKey(func(i int) uint64 { return f.term[i] }),
		"master_changes": byKey(func(i int) uint64 { return f.changes[i] }),
		"peers":          map[string]int{"live": f.live, "dead": f.dead},
		"healthy":        b2u(f.healthy),
		"frames":         map[string]uint64{"in": f.framesIn, "out": f.framesOut},
		"bytes":          map[string]uint64{"in": f.bytesIn, "out": f.bytesOut},
		"errors":         errs,
		"reconnects":     f.reconnects,
	}
}

// expvarMu makes PublishExpvar's check and publish one step for the
// callers of PublishExpvar.
var expvarMu sync.Mutex

// PublishExpvar publishes this node's figures (those of /metrics: is_master,
// term and master_changes by key, "" being global; peers live and dead;
// healthy; frames, bytes and errors; reconnects; and the node's uid) as one
// JSON object under name with package expvar, which serves it at
// /debug/vars of http.DefaultServeMux. They are computed when read.
//
// expvar has no way to unpublish: the name stays taken after Stop (it
// then shows a stopped node). It returns ErrExpvarExists, instead of
// panicking as expvar.Publish does, if name is taken. It does not block.
func (m *Msc) PublishExpvar(name string) error {
	expvarMu.Lock()
	defer expvarMu.Unlock()
	if expvar.Get(name) != nil {
		return fmt.Errorf("%w: %q", ErrExpvarExists, name)
	}
	expvar.Publish(name, expvar.Func(func() any {
		f := m.figures()
		return f.expvarMap(m.cfg.UID)
	}))
	return nil
}
