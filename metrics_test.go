package msc

import (
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// A parser of the Prometheus text exposition format, version 0.0.4,
// written against its grammar
// (https://prometheus.io/docs/instrumenting/exposition_formats/), strict
// where Prometheus is: the tests check /metrics with it.

type promSample struct {
	labels map[string]string
	value  float64
}

type promFamily struct {
	typ, help string
	samples   []promSample
}

func isNameStart(c byte, colon bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || colon && c == ':'
}

func isNameChar(c byte, colon bool) bool { return isNameStart(c, colon) || c >= '0' && c <= '9' }

// readPromName reads a metric name (colon: true) or a label name.
func readPromName(s string, colon bool) (name, rest string, err error) {
	if s == "" || !isNameStart(s[0], colon) {
		return "", s, fmt.Errorf("want a name at %q", s)
	}
	i := 1
	for i < len(s) && isNameChar(s[i], colon) {
		i++
	}
	return s[:i], s[i:], nil
}

func parsePromValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

// parseProm parses a whole exposition; it fails on anything the format
// does not allow.
func parseProm(text string) (map[string]*promFamily, error) {
	fams := make(map[string]*promFamily)
	typed := make(map[string]bool)
	helped := make(map[string]bool)
	seen := make(map[string]bool) // series: name and sorted labels
	var current string            // the family whose samples are being read
	done := make(map[string]bool) // families whose samples ended
	fam := func(name string) *promFamily {
		if fams[name] == nil {
			fams[name] = &promFamily{typ: "untyped"}
		}
		return fams[name]
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		return nil, errors.New("does not end with a line feed")
	}
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fail := func(f string, a ...any) error {
			return fmt.Errorf("line %d %q: %s", n+1, line, fmt.Sprintf(f, a...))
		}
		if !utf8.ValidString(line) {
			return nil, fail("not UTF-8")
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if strings.HasPrefix(line, "#") {
			rest := strings.TrimLeft(line[1:], " \t")
			kw, rest, _ := strings.Cut(rest, " ")
			if kw != "HELP" && kw != "TYPE" {
				continue // a comment
			}
			name, rest, err := readPromName(strings.TrimLeft(rest, " \t"), true)
			if err != nil {
				return nil, fail("%v", err)
			}
			if done[name] || current == name {
				return nil, fail("%s after its samples", kw)
			}
			if kw == "TYPE" {
				typ := strings.TrimSpace(rest)
				if typed[name] {
					return nil, fail("second TYPE")
				}
				if !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, typ) {
					return nil, fail("bad TYPE")
				}
				typed[name] = true
				fam(name).typ = typ
				continue
			}
			if helped[name] {
				return nil, fail("second HELP")
			}
			if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				return nil, fail("want blank after the name")
			}
			helped[name] = true
			if fam(name).help, err = unescapeProm(strings.TrimLeft(rest, " \t"), false); err != nil {
				return nil, fail("%v", err)
			}
			continue
		}
		name, rest, err := readPromName(line, true)
		if err != nil {
			return nil, fail("%v", err)
		}
		if name != current {
			if done[name] {
				return nil, fail("samples of %s not together", name)
			}
			if current != "" {
				done[current] = true
			}
			current = name
		}
		labels := make(map[string]string)
		if strings.HasPrefix(rest, "{") {
			rest = rest[1:]
			for {
				rest = strings.TrimLeft(rest, " \t")
				if strings.HasPrefix(rest, "}") {
					rest = rest[1:]
					break
				}
				var ln string
				if ln, rest, err = readPromName(rest, false); err != nil {
					return nil, fail("label: %v", err)
				}
				if _, dup := labels[ln]; dup {
					return nil, fail("label %s twice", ln)
				}
				rest = strings.TrimLeft(rest, " \t")
				if !strings.HasPrefix(rest, `="`) {
					return nil, fail("want =\" after label %s", ln)
				}
				rest = rest[2:]
				end := -1
				for i := 0; i < len(rest); i++ {
					if rest[i] == '\\' {
						i++
					} else if rest[i] == '"' {
						end = i
						break
					}
				}
				if end < 0 {
					return nil, fail("unterminated label value")
				}
				if labels[ln], err = unescapeProm(rest[:end], true); err != nil {
					return nil, fail("%v", err)
				}
				rest = strings.TrimLeft(rest[end+1:], " \t")
				if strings.HasPrefix(rest, ",") {
					rest = rest[1:]
				} else if !strings.HasPrefix(rest, "}") {
					return nil, fail("want , or } after a label")
				}
			}
		}
		if rest == "" || rest[0] != ' ' && rest[0] != '\t' {
			return nil, fail("want blank before the value")
		}
		f := strings.Fields(rest)
		if len(f) < 1 || len(f) > 2 {
			return nil, fail("want a value and an optional timestamp")
		}
		v, err := parsePromValue(f[0])
		if err != nil {
			return nil, fail("value: %v", err)
		}
		if len(f) == 2 {
			if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
				return nil, fail("timestamp: %v", err)
			}
		}
		keys := make([]string, 0, len(labels))
		for k, v := range labels {
			keys = append(keys, k+"\x00"+v)
		}
		sort.Strings(keys)
		series := name + "\x01" + strings.Join(keys, "\x01")
		if seen[series] {
			return nil, fail("series twice")
		}
		seen[series] = true
		if t := fam(name).typ; t == "counter" && v < 0 {
			return nil, fail("negative counter")
		}
		fam(name).samples = append(fam(name).samples, promSample{labels, v})
	}
	return fams, nil
}

// unescapeProm undoes the escapes of a label value (\\, \", \n) or of a
// HELP text (\\, \n); any other escape is an error.
func unescapeProm(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			if label && c == '"' || c == '\n' {
				return "", fmt.Errorf("unescaped %q", c)
			}
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("trailing backslash")
		}
		switch {
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '"' && label:
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("bad escape \\%c", s[i])
		}
	}
	return b.String(), nil
}

func TestPromParserRejects(t *testing.T) {
	for _, bad := range []string{
		"x 1",                              // no final line feed
		"x{a=\"b} 1\n",                     // unterminated
		"x{a=\"\\q\"} 1\n",                 // bad escape
		"x{a=\"1\",a=\"2\"} 1\n",           // label twice
		"x 1\nx 2\n",                       // series twice
		"x 1\ny 1\nx{a=\"1\"} 1\n",         // not together
		"x 1\n# TYPE x counter\n",          // TYPE after samples
		"# TYPE x counter\nx -1\n",         // negative counter
		"# TYPE x blah\n",                  // bad type
		"# TYPE x gauge\n# TYPE x gauge\n", // twice
		"1x 1\n",                           // bad name
		"x{1a=\"\"} 1\n",                   // bad label name
		"x one\n",                          // bad value
		"x{a=\"b\"}1\n",                    // no blank
	} {
		if _, err := parseProm(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	fams, err := parseProm("# HELP x a \\\\ b\\n c\n# TYPE x counter\nx{a=\"q\\\"\\\\\\n\",b=\"\"} 1.5e3 1700000000\nx +Inf\n# comment\n\ny NaN\n")
	if err != nil {
		t.Fatal(err)
	}
	if f := fams["x"]; f.typ != "counter" || f.help != "a \\ b\n c" || len(f.samples) != 2 || f.samples[0].labels["a"] != "q\"\\\n" || f.samples[0].value != 1500 {
		t.Fatalf("%+v", f)
	}
}

// get fetches path from h.
func get(t testing.TB, h http.Handler, method, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Header(), string(body)
}

// metricsOf fetches and parses a node's /metrics.
func metricsOf(t testing.TB, m *Msc) map[string]*promFamily {
	t.Helper()
	code, hdr, body := get(t, m.Handler(), "GET", "/metrics")
	if code != 200 || hdr.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("/metrics: %d %q", code, hdr.Get("Content-Type"))
	}
	fams, err := parseProm(body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series of name with label = v.
func value(fams map[string]*promFamily, name, label, v string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, s := range f.samples {
		if s.labels[label] == v && len(s.labels) == 1 || label == "" && len(s.labels) == 0 {
			return s.value, true
		}
	}
	return 0, false
}

// Keys with characters that need escaping, one of them not UTF-8.
var oddKeys = []string{"plain", `quote"back\slash`, "line\nfeed", "bad\xffutf8"}

func TestMetrics(t *testing.T) {
	c := newCluster(t, 3, func(i int, o *Options) { o.Keys = oddKeys }).start()
	c.waitMaster(c.nodes[0])
	waitFor(t, "all peers live", func() bool {
		for _, m := range c.nodes {
			if len(livePeers(m)) != 2 {
				return false
			}
		}
		return true
	})
	fams := metricsOf(t, c.nodes[0])
	for name, typ := range map[string]string{
		"msc_is_master": "gauge", "msc_term": "gauge", "msc_peers": "gauge", "msc_healthy": "gauge",
		"msc_master_changes_total": "counter", "msc_frames_total": "counter", "msc_bytes_total": "counter",
		"msc_errors_total": "counter", "msc_reconnects_total": "counter",
	} {
		if f := fams[name]; f == nil || f.typ != typ || f.help == "" {
			t.Errorf("%s: %+v, want a %s with HELP", name, f, typ)
		}
	}
	want := func(m *Msc, name, label, v string, x float64) {
		t.Helper()
		got, ok := value(metricsOf(t, m), name, label, v)
		if !ok || got != x {
			t.Errorf("%s: %s{%s=%q} = %v (found %v), want %v", m.UID(), name, label, v, got, ok, x)
		}
	}
	for i, m := range c.nodes {
		want(m, "msc_is_master", "key", "", float64(b2u(i == 0)))
		for _, k := range oddKeys {
			want(m, "msc_is_master", "key", strings.ToValidUTF8(k, "\uFFFD"), float64(b2u(i == 0)))
		}
		want(m, "msc_peers", "state", "live", 2)
		want(m, "msc_peers", "state", "dead", 0)
		want(m, "msc_healthy", "", "", 1)
		want(m, "msc_master_changes_total", "key", "", 0)
		if f := metricsOf(t, m)["msc_errors_total"]; f == nil || len(f.samples) != len(errCauses)+1 {
			t.Errorf("msc_errors_total: %+v, want every cause", f)
		}
		for _, dir := range []string{"in", "out"} {
			if v, _ := value(metricsOf(t, m), "msc_frames_total", "dir", dir); v == 0 {
				t.Errorf("no frames %s", dir)
			}
			if v, _ := value(metricsOf(t, m), "msc_bytes_total", "dir", dir); v == 0 {
				t.Errorf("no bytes %s", dir)
			}
		}
	}
	if testing.Verbose() {
		_, _, body := get(t, c.nodes[1].Handler(), "GET", "/metrics")
		t.Logf("/metrics of node1:\n%s", body)
	}

	// node2 restarts: node1 dials it again; node0 stops: node1 sees the
	// master change, globally and for each key.
	c.restart(2, nil)
	waitFor(t, "node1 reconnected", func() bool {
		v, _ := value(metricsOf(t, c.nodes[1]), "msc_reconnects_total", "", "")
		return v >= 1
	})
	c.nodes[0].Stop()
	c.waitMaster(c.nodes[1])
	waitFor(t, "changes counted", func() bool {
		fams := metricsOf(t, c.nodes[1])
		for _, k := range append([]string{""}, oddKeys...) {
			if v, _ := value(fams, "msc_master_changes_total", "key", strings.ToValidUTF8(k, "\uFFFD")); v != 1 {
				return false
			}
		}
		v, _ := value(fams, "msc_peers", "state", "dead")
		return v >= 1
	})
	want(c.nodes[1], "msc_is_master", "key", "", 1)
}

// Errors are counted by cause, before rate-limiting.
func TestMetricsErrors(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) {
		if i == 1 {
			o.Key = "another passphrase"
		}
	}).start()
	waitFor(t, "auth failures counted", func() bool {
		v, _ := value(metricsOf(t, c.nodes[0]), "msc_errors_total", "cause", "auth")
		return v >= 2
	})
	m := c.nodes[0]
	for i := range 5 {
		m.report(&PeerError{Peer: "p", Err: fmt.Errorf("%w: %d", ErrUnreachable, i)})
	}
	m.report(errors.New("something else"))
	fams := metricsOf(t, m)
	if v, _ := value(fams, "msc_errors_total", "cause", "unreachable"); v < 5 {
		t.Errorf("unreachable: %v, want at least 5", v)
	}
	if v, _ := value(fams, "msc_errors_total", "cause", "other"); v < 1 {
		t.Errorf("other: %v", v)
	}
}

func TestHandler(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) {
		o.Keys = []string{"a"}
		if i == 1 {
			o.Keys = []string{"a", "b"}
		}
	}).start()
	c.waitMaster(c.nodes[0])
	m0, m1 := c.nodes[0], c.nodes[1]
	waitFor(t, "node1 master of b", func() bool { return m1.IsMasterByKey("b") })
	h0, h1 := m0.Handler(), m1.Handler()
	for _, tc := range []struct {
		h      http.Handler
		method string
		path   string
		code   int
		body   string
	}{
		{h0, "GET", "/master", 200, "master\n"},
		{h1, "GET", "/master", 503, "not master; the master is node0\n"},
		{h1, "HEAD", "/master", 503, ""},
		{h0, "GET", "/master?key=", 200, "master\n"},
		{h0, "GET", "/master?key=a", 200, "master\n"},
		{h1, "GET", "/master?key=a", 503, "not master; the master is node0\n"},
		{h1, "GET", "/master?key=b", 200, "master\n"},
		{h0, "GET", "/master?key=b", 503, "not master; no master known\n"},
		{h0, "GET", "/healthz", 200, "ok\n"},
		{h0, "POST", "/healthz", 405, ""},
		{h0, "GET", "/nothing", 404, ""},
	} {
		code, _, body := get(t, tc.h, tc.method, tc.path)
		if code != tc.code || tc.body != "" && body != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, code, body, tc.code, tc.body)
		}
	}
	code, hdr, body := get(t, h1, "GET", "/status")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/status: %d %v %q", code, err, hdr.Get("Content-Type"))
	}
	if st.UID != "node1" || st.Master != "node0" || len(st.Peers) != 1 || !st.Peers[0].Live || len(st.Keys) != 2 {
		t.Fatalf("/status: %+v", st)
	}
	m0.Stop()
	code, _, body = get(t, h0, "GET", "/healthz")
	if code != 503 || !strings.Contains(body, ErrStopped.Error()) {
		t.Fatalf("/healthz of a stopped node: %d %q", code, body)
	}
	if code, _, _ := get(t, h0, "GET", "/master"); code != 503 {
		t.Fatalf("/master of a stopped node: %d", code)
	}
	metricsOf(t, m0) // still parses
}

func TestPublishExpvar(t *testing.T) {
	c := newCluster(t, 2, func(i int, o *Options) { o.Keys = []string{"k"} }).start()
	c.waitMaster(c.nodes[0])
	name := fmt.Sprintf("msc-test-%p", c)
	if err := c.nodes[0].PublishExpvar(name); err != nil {
		t.Fatal(err)
	}
	if err := c.nodes[1].PublishExpvar(name); !errors.Is(err, ErrExpvarExists) {
		t.Fatalf("second publish: %v", err)
	}
	var got struct {
		UID      string            `json:"uid"`
		IsMaster map[string]uint64 `json:"is_master"`
		Peers    map[string]int    `json:"peers"`
		Frames   map[string]uint64 `json:"frames"`
		Errors   map[string]uint64 `json:"errors"`
	}
	if err := json.Unmarshal([]byte(expvar.Get(name).String()), &got); err != nil {
		t.Fatal(err)
	}
	if got.UID != "node0" || got.IsMaster[""] != 1 || got.IsMaster["k"] != 1 || got.Peers["live"] != 1 ||
		got.Frames["in"] == 0 || len(got.Errors) != len(errCauses)+1 {
		t.Fatalf("%+v", got)
	}
}
