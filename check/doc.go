// Command check runs a small msc cluster of real worker processes on
// loopback and shows, live, which worker is master globally and per key.
//
//	go run ./check                  # 5 workers, interactive
//	go run ./check -n 3 -interval 50ms
//	go run ./check -scenario tour   # scripted failover tour, exits 0 or 1
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
