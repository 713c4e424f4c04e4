package msc

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Handler returns an HTTP handler serving, for GET and HEAD:
//
//   - /status: [Msc.Status] as JSON.
//   - /healthz: 200 while [Msc.Healthy] is nil, else 503 with the reason:
//     for a readiness probe.
//   - /master: 200 on the global master, 503 elsewhere; /master?key=K the
//     same for key K (an empty K: global): for a load balancer's health check that should send
//     traffic to the master only.
//   - /metrics: the Prometheus text exposition format (version 0.0.4):
//     msc_is_master{key}, msc_term{key} (key "" is the global mastership,
//     then one series per key of this node), msc_master_changes_total{key},
//     msc_peers{state="live"|"dead"}, msc_healthy,
//     msc_frames_total{dir="in"|"out"}, msc_bytes_total{dir},
//     msc_errors_total{cause} and msc_reconnects_total.
//
// Handler does not block, nor do its requests wait for the peers. It
// serves these paths at its root; to serve them under a prefix, wrap
// it: mux.Handle("/msc/", http.StripPrefix("/msc", m.Handler())).
func (m *Msc) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		noCache(w)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(m.Status()) // an error here means the client went away
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		textPlain(w)
		if err := m.Healthy(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /master", func(w http.ResponseWriter, r *http.Request) {
		textPlain(w)
		key := r.URL.Query().Get("key")
		is := m.IsMaster()
		if key != "" {
			is = m.IsMasterByKey(key)
		}
		uid := m.masterUID(key)
		if is {
			fmt.Fprintln(w, "master")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		if uid == "" {
			fmt.Fprintln(w, "not master; no master known")
		} else {
			fmt.Fprintf(w, "not master; the master is %s\n", uid)
		}
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		noCache(w)
		f := m.figures()
		f.writeMetrics(w) // an error here means the client went away
	})
	return mux
}

// masterUID returns the master of key ("" global), "" if none is known.
func (m *Msc) masterUID(key string) string {
	if key == "" {
		uid, _ := m.Master()
		return uid
	}
	uid, _ := m.MasterByKey(key)
	return uid
}

func textPlain(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	noCache(w)
}

func noCache(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }
