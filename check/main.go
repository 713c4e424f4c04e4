//go:build unix

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if os.Getenv(workerEnv) == "1" {
		os.Exit(workerMain(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// config is what the flags chose.
type config struct {
	n        int
	basePort int
	interval time.Duration
	wait     time.Duration
	report   time.Duration
	scenario string
	sizes    []int
	reps     int
	steady   time.Duration
	verbose  bool
	debug    bool
	balance  bool   // Options.Balance, every worker holding the same keys
	quorum   bool   // Options.Quorum: a majority of the workers
	keys     int    // balance: how many keys
	voters   int    // Options.Voters: workers 0..voters-1 are voters, the others members (0: full mesh)
	exe      string // the binary the workers run
}

// bound is how long the cluster may take to settle after a fault.
func (c *config) bound() time.Duration { return 10*c.wait + 2*time.Second }

// run is check's main: it returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg := &config{}
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.n, "n", 5, "number of workers")
	fs.IntVar(&cfg.basePort, "base-port", 17700, "worker i listens on 127.0.0.1:base-port+i, below the ephemeral port range (0: pick free ports)")
	fs.DurationVar(&cfg.interval, "interval", 100*time.Millisecond, "heartbeat Interval")
	fs.DurationVar(&cfg.wait, "wait", 0, "WaitTimeout (default 3*interval)")
	fs.DurationVar(&cfg.report, "report", 100*time.Millisecond, "how often workers report their status")
	fs.StringVar(&cfg.scenario, "scenario", "", "run a scenario instead of the interactive mode: tour, bench or idle (CPU and memory of each worker process over -steady)")
	bench := fs.Bool("bench", false, "same as -scenario bench")
	sizes := fs.String("sizes", "3,5,9", "bench: cluster sizes")
	fs.IntVar(&cfg.reps, "reps", 20, "bench: repetitions of each fault")
	fs.DurationVar(&cfg.steady, "steady", 5*time.Second, "bench: length of the run without faults")
	fs.BoolVar(&cfg.verbose, "v", false, "log the errors workers report (unreachable peers...); bench: show the timeline of slow failovers")
	fs.BoolVar(&cfg.debug, "debug", false, "workers log the library's debug messages (shown with -v in the bench's timelines)")
	fs.BoolVar(&cfg.balance, "balance", false, "workers set Options.Balance and all hold the same -keys keys; the table shows how many each masters")
	fs.IntVar(&cfg.keys, "keys", 100, "balance: how many keys (q-000, q-001…)")
	fs.BoolVar(&cfg.quorum, "quorum", false, "workers set Options.Quorum to a majority of -n (of -voters, with it): no two masters, failover after a crash slower")
	fs.IntVar(&cfg.voters, "voters", 0, "workers 0 to voters-1 are voters (Options.Voters, UIDs w0, w1…), the others members that dial only them (docs/deploying.md, \"Large clusters\"); 0: full mesh")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./check [flags]\n\nRuns msc worker processes on loopback; type h for commands.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "check: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *bench {
		cfg.scenario = "bench"
	}
	if cfg.wait == 0 {
		cfg.wait = 3 * cfg.interval
	}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 3 {
			fmt.Fprintf(stderr, "check: bad -sizes %q: want sizes of 3 or more\n", *sizes)
			return 2
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	switch {
	case cfg.interval <= 0 || cfg.wait < cfg.interval || cfg.report <= 0:
		fmt.Fprintln(stderr, "check: want interval > 0, wait >= interval, report > 0")
		return 2
	case cfg.n < 1 || cfg.n > 64:
		fmt.Fprintln(stderr, "check: -n must be 1 to 64")
		return 2
	case cfg.scenario == "tour" && cfg.n < 3:
		fmt.Fprintln(stderr, "check: the tour needs 3 workers or more")
		return 2
	case cfg.reps < 1:
		fmt.Fprintln(stderr, "check: -reps must be 1 or more")
		return 2
	case cfg.voters < 0 || cfg.voters > cfg.n:
		fmt.Fprintln(stderr, "check: -voters must be 0 to -n")
		return 2
	case cfg.voters > 0 && cfg.scenario == "idle":
		fmt.Fprintln(stderr, "check: -voters runs in the interactive mode, the tour and the bench")
		return 2
	case cfg.balance && (cfg.keys < 1 || cfg.keys > maxBalanceKeys):
		fmt.Fprintf(stderr, "check: -keys must be 1 to %d\n", maxBalanceKeys)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 1
	}
	cfg.exe = exe

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	most := cfg.n
	switch cfg.scenario {
	case "bench":
		most = max(most, maxOf(cfg.sizes))
	case "idle":
		most = 2 * cfg.n // the workers', then the references'
	}
	ports, err := choosePorts(cfg.basePort, most)
	if err != nil {
		fmt.Fprintln(stderr, "check:", err)
		return 1
	}
	switch cfg.scenario {
	case "":
		return interactive(ctx, cfg, ports[:cfg.n], stdin, stdout)
	case "tour":
		return tour(ctx, cfg, ports[:cfg.n], stdout)
	case "bench":
		return runBench(ctx, cfg, ports, stdout)
	case "idle":
		return runIdle(ctx, cfg, ports[:2*cfg.n], stdout)
	default:
		fmt.Fprintf(stderr, "check: unknown scenario %q (want tour, bench or idle)\n", cfg.scenario)
		return 2
	}
}

func maxOf(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// choosePorts returns n ports from base on, or, for base 0, n consecutive
// free ports below the usual ephemeral range (so that no outgoing
// connection takes one while its worker is down).
func choosePorts(base, n int) ([]int, error) {
	if base > 0 {
		if base+n-1 > 65535 {
			return nil, fmt.Errorf("ports %d-%d out of range", base, base+n-1)
		}
		ports := make([]int, n)
		for i := range ports {
			ports[i] = base + i
		}
		return ports, nil
	}
	for range 100 {
		b := 20000 + rand.IntN(12000-n)
		var lns []net.Listener
		ok := true
		for i := range n {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b+i)))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return choosePorts(b, n)
		}
	}
	return nil, errors.New("found no free ports")
}
