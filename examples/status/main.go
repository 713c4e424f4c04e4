// Command status serves a node's Status as JSON over HTTP, with a health
// check that answers 200 on the master only (for a load balancer or a
// cron runner that should hit the master). Three nodes run in one process;
// the HTTP server belongs to node1.
//
//	go run ./examples/status                                  # fetch once, print, exit
//	go run ./examples/status -serve -http 127.0.0.1:8080      # until Ctrl-C
//	curl -s 127.0.0.1:8080/status; curl -si 127.0.0.1:8080/master
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/examples/internal/loopback"
)

func main() {
	addr := flag.String("http", "127.0.0.1:0", "HTTP listen address")
	serve := flag.Bool("serve", false, "keep serving until Ctrl-C instead of fetching once and exiting")
	flag.Parse()

	// Three nodes on 127.0.0.1, node0 the oldest.
	nodes, err := loopback.Nodes(3, msc.Options{Key: "status example passphrase", Keys: []string{"reports"}})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range nodes {
		if err := m.Start(); err != nil {
			log.Fatal(err)
		}
		defer m.Stop()
	}
	m := nodes[1]

	mux := http.NewServeMux()
	mux.Handle("GET /status", statusHandler(m))
	mux.Handle("GET /master", masterHandler(m))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	log.Printf("serving %s/status and %s/master", base, base)

	if *serve {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		<-ctx.Done()
		return
	}
	// Give the nodes a moment to find each other, then fetch.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if st := m.Status(); st.Ready && len(st.Peers) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, path := range []string{"/status", "/master"} {
		resp, err := http.Get(base + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("GET %s → %s\n%s\n", path, resp.Status, body)
	}
}

// statusHandler serves the node's Status as JSON.
func statusHandler(m *msc.Msc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(m.Status()) // an error here means the client went away
	})
}

// masterHandler answers 200 if the node is master, 503 otherwise.
func masterHandler(m *msc.Msc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is := m.IsMaster()
		uid, _ := m.Master()
		if !is {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintf(w, "master: %v (the master is %q)\n", is, uid)
	})
}
