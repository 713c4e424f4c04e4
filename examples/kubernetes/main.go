// Command kubernetes is a service made for Kubernetes: its replicas find
// each other through a headless Service (msc.DNS), serve their probes and
// metrics with Handler, and run a job on the master only (RunAsMaster).
// The manifests beside it deploy three replicas; docs/deploying.md says how.
//
// Configuration, from the environment (deployment.yaml sets it):
//
//	MSC_KEY     the shared passphrase (from a Secret)                  required
//	MSC_DNS     the headless Service's name: peers from its A records   one of
//	MSC_PEERS   or a static list, "10.0.0.1:8778, 10.0.0.2:8778"       these two
//	MSC_PORT    the port msc listens on, and dials with MSC_DNS         8778
//	HTTP_ADDR   where /healthz, /master, /status and /metrics are       :8080
//	HTTP_ADVERTISE  the address peers reach that HTTP at (Options.Meta)  HTTP_ADDR
//	POD_NAME    the node's UID (the downward API)                       the host name
//	JOB_EVERY   how often the master runs the job                       10s
//	MSC_VOTERS  the voters' UIDs, "msc-voter-0,msc-voter-1,msc-voter-2": none: a full mesh
//	            the others are members, which dial the voters only
//	            (docs/deploying.md, "Large clusters"; voters.yaml, members.yaml)
//	MSC_KEYS    keys this replica holds, spread over the replicas with  none
//	            Options.Balance; each key's master runs the job for it
//
// Outside Kubernetes, two replicas on one machine:
//
//	MSC_KEY=k MSC_PORT=8778 HTTP_ADDR=:8080 MSC_PEERS=127.0.0.1:8778,127.0.0.1:8779 go run ./examples/kubernetes &
//	MSC_KEY=k MSC_PORT=8779 HTTP_ADDR=:8081 MSC_PEERS=127.0.0.1:8778,127.0.0.1:8779 go run ./examples/kubernetes &
//	curl -i localhost:8080/master; curl localhost:8081/metrics
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/msc-go/msc"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Getenv, log, nil); err != nil {
		log.Error("exit", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx is done. ready, if not nil, is called with the
// HTTP address once serving (tests).
func run(ctx context.Context, getenv func(string) string, log *slog.Logger, ready func(httpAddr string)) error {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	port, err := strconv.Atoi(env("MSC_PORT", "8778"))
	if err != nil {
		return fmt.Errorf("MSC_PORT: %w", err)
	}
	every, err := time.ParseDuration(env("JOB_EVERY", "10s"))
	if err != nil {
		return fmt.Errorf("JOB_EVERY: %w", err)
	}
	var discover msc.Discover
	switch {
	case getenv("MSC_DNS") != "":
		discover = msc.DNS(getenv("MSC_DNS"), port)
	case getenv("MSC_PEERS") != "":
		discover = msc.Static(getenv("MSC_PEERS"))
	default:
		return errors.New("set MSC_DNS (a headless Service) or MSC_PEERS (host:port, ...)")
	}
	uid := getenv("POD_NAME")
	if uid == "" {
		uid, _ = os.Hostname()
	}

	voters, keys := list(getenv("MSC_VOTERS")), list(getenv("MSC_KEYS"))

	httpAddr := env("HTTP_ADDR", ":8080")
	m, err := msc.New(msc.Options{
		Key:      getenv("MSC_KEY"),
		Port:     port,
		UID:      uid,
		Discover: discover,
		Voters:   voters,
		Keys:     keys,
		Balance:  len(keys) > 0,
		// Every replica knows where the master serves HTTP (/leader).
		Meta:   map[string]string{"http": env("HTTP_ADVERTISE", httpAddr)},
		Logger: log.With("component", "msc"),
	})
	if err != nil {
		return err
	}
	m.OnError(func(err error) { log.Warn("msc", "err", err) })
	m.OnChange(func(c msc.Change) {
		log.Info("mastership", "key", c.Key, "master", c.Master, "is_master", c.IsMaster, "term", c.Term)
	})
	if err := m.Start(); err != nil {
		return err
	}
	defer m.Stop()

	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", m.Handler())
	// /leader: where the master serves HTTP, from its Meta: a replica
	// forwards a request that only the master may serve there.
	mux.HandleFunc("/leader", func(w http.ResponseWriter, r *http.Request) {
		meta, ok := m.MasterMeta("")
		if !ok {
			http.Error(w, "no master known", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, meta["http"])
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("started", "uid", uid, "msc", m.Addr().String(), "http", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr().String())
	}

	// The global job on the global master (a voter, with MSC_VOTERS); the
	// job of each key on that key's master (members too).
	jobs := make(chan error, 1+len(keys))
	go func() {
		jobs <- m.RunAsMaster(ctx, func(ctx context.Context, term uint64) {
			job(ctx, log, term, every)
		})
	}()
	for _, k := range keys {
		go func() {
			jobs <- m.RunAsMasterByKey(ctx, k, func(ctx context.Context, term uint64) {
				job(ctx, log.With("key", k), term, every)
			})
		}()
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	// SIGTERM: resign, then leave; the peers elect another master at once.
	// Stop cancels the job's context and waits for it (at most WaitTimeout;
	// ErrRunTimeout says a job outlived it and may overlap the next master).
	if err := m.Stop(); err != nil {
		log.Warn("stop", "err", err)
	}
	for range 1 + len(keys) {
		<-jobs
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shut)
}

// list splits a comma-separated list, dropping blanks.
func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// job is the work only the master does, until its context is cancelled.
// Pass term along with every write to shared state, so that a store can
// refuse a deposed master's late writes (see examples/fencing).
func job(ctx context.Context, log *slog.Logger, term uint64, every time.Duration) {
	log.Info("master: job starts", "term", term)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("job stops: no longer master", "term", term)
			return
		case <-t.C:
			log.Info("master: job runs", "term", term)
		}
	}
}
