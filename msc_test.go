// Where each subject is tested. Files in package msc may use the
// unexported parts; they cannot import package msctest, which imports msc,
// so they build clusters with testCluster (helpers_test.go), which wraps
// the same harness as msctest.Cluster: internal/cluster, the one cluster
// harness. Files in package msc_test (marked *) use the exported API and
// msctest.Cluster, as users do, with a few helpers lent by export_test.go.
// Every relayed connection goes through internal/relay.
//
//	election_test.go      the oldest is master: lone node, convergence, UID ties, no claim before hearing peers, unreachable peers, restart, terms
//	priority_test.go      Priority and SetPriority, Sticky
//	handoff_test.go       the master leaves (Stop, abrupt close, silence): the next is agreed master in time
//	keys_test.go          per-key masters, AddKey(s)/RemoveKey(s), key terms, the key overlap meter
//	update_test.go        Update
//	bykey_test.go*        …ByKey("") behaves as the global twin, for each method
//	errors_test.go*       each setter's error (errors.Is): stopped, bad input, a run that outlives WaitTimeout
//	balance_test.go       Balance (balance_figures_test.go: the figures docs/election.md quotes)
//	doif_test.go          DoIfMaster, DoIfMasterByKey and their queue
//	runas_test.go         RunAsMaster, RunAsMasterByKey, their context
//	change_test.go        Watch, OnChange
//	health_test.go        Healthy
//	meta_test.go          Meta, SetMeta, MasterMeta
//	observer_test.go      Observer
//	servers_test.go       AddServer, RemoveServer at runtime
//	discover_test.go      Discover, DNS, Static (dns_test.go: the fake DNS server)
//	dial_test.go          dialing turns
//	linkstate_test.go     liveness of a late peer
//	stop_test.go          Stop: concurrent calls, no goroutine left
//	prestart_test.go      methods before Start
//	options_test.go       New: errors, defaults, ServerConfig, secrets not logged
//	quorum_test.go        Quorum: votes, leases, no overlap across partitions (quorumkeys_test.go: per key)
//	voters_test.go        Voters (members_test.go: members, which dial only the voters)
//	resume_test.go        a clock jump (resume_proc_test.go*: resumed and paused processes)
//	crypto_test.go        seal/open, passphrases, algorithms (and a cluster with each)
//	rotation_test.go      key rotation: AcceptKeys, SetKey
//	tls_test.go           Options.TLS
//	wire_test.go          the wire format, frames, what travels in clear
//	outbox_test.go        the outbox of a slow peer
//	hostile_test.go       raw clients: garbage, silence, floods, replays, tampering, misconfigured peers, the inbound limit
//	network_test.go*      network faults: partitions (one- and two-way), slow and flapping links, restarts
//	metrics_test.go       metrics, Handler, PublishExpvar (handler_failover_test.go*: the handler through a failover)
//	regress_test.go       regressions found by hand
//	sim_test.go           the simulator (sim_faults_test.go, sim_checks_test.go: its faults and invariants)
//	fuzz_test.go          fuzz targets of the wire
//	bench_test.go         hot paths do not allocate; benchmarks (and *_bench_test.go)
//	example_test.go*      examples of the API (example_methods_test.go*: one per method a program calls; example_deploy_test.go*: discovery and the handler)
//	doccomment_test.go*   every exported name has a doc comment
//	docs_test.go*         README.md and docs/: size, links, the program compiles
//	race_test.go          how many simulator seeds run under -race
//	msctest/              the cluster of package msctest: kill, restart, partition, block, cut, delay, pause
//	internal/cluster/     the cluster harness msctest and testCluster wrap: partition holds bytes, heal delivers them, restart on the same address
//	internal/relay/       the TCP relay
package msc

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain runs the package tests, then checks that no goroutine of a
// node outlived the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := waitNoGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines of msc left after all tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}
