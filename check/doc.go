// Command check runs a small msc cluster of real worker processes on
// loopback and shows, live, which worker is master globally and per key.
//
//	go run ./check                  # 5 workers, interactive
//	go run ./check -n 3 -interval 50ms
//	go run ./check -scenario tour   # scripted failover tour, exits 0 or 1
//	go run ./check -balance         # Options.Balance: 100 keys spread over the workers
//	go run ./check -bench -sizes 3,5,9 -reps 20
//
// Each worker is this binary run again in a hidden worker mode (the
// environment variable MSC_CHECK_WORKER=1). Worker i listens on
// 127.0.0.1:base-port+i, dials every other worker, and competes for a
// subset of the keys "1", "2" and "3", so that per-key masters differ from
// the global one. Its StartTime is the real time it started, so a worker
// started again is the youngest. Workers report their state to check as
// JSON lines on their standard output, stamped with their own clock; check
// measures every failover from the moment it sent the signal to the moment
// exactly one running worker reports master.
//
// With -balance, the workers set Options.Balance and all hold the same
// keys, -keys of them (default 100, named "q-000", "q-001"…), instead of
// "1", "2" and "3". The table then shows how many keys each worker
// masters, and a line under it the spread: the count of each running
// worker, their total, min and max, and whether every key has exactly one
// master among the running workers. To check that without sending key
// lists, each worker reports, besides its count, the sum (mod 2^64) of a
// 64-bit hash of each key it masters, and the sum of a hash of each key
// with the master it sees for it: check wants the counts to add up to
// -keys, the first sums to add up to the sum over all the keys, and the
// second sums to be equal on every worker. The event log shows the
// spread each time the keys settle again after a fault. The tour and the
// bench accept -balance too; each step of the tour must then also settle
// with one master per key.
//
// Commands, one per line on standard input:
//
//	k N   kill worker N (SIGKILL)
//	p N   pause worker N (SIGSTOP)
//	c N   continue worker N (SIGCONT)
//	t N   stop worker N gracefully (SIGTERM: Stop, then exit 0)
//	s N   start worker N again
//	l     list the workers (useful when the output is not a terminal)
//	h     help
//	q     quit
//
// Every worker is ended when check exits, also on Ctrl-C.
//
// check needs a Unix system: it pauses workers with SIGSTOP.
package main
