//go:build race

package msc

// The race detector makes the simulator about 6 times slower and finds
// nothing in it (each seed runs on one goroutine): under -race,
// TestSimulate runs fewer seeds, so that the suite stays under 3 minutes
// (75: with 100 a clean clone took 2 min 40 s and 2 min 51 s on
// 2026-12-07 late, the root package 144 and 156 s; 100: with 120 a clean
// clone took 2 min 14 s to 2 min 42 s on
// 2026-12-07, the root package 128–147 s; with 160 it took 3 min 0.4 s,
// the simulator 53 s of the root package's 165 s; 160: 200
// took 77 s of the root package's 164 s under -race on 2026-12-06, with
// the harness and the state deltas; 200 since the wall clocks keep the
// true time while the monotonic clocks drift, which makes nodes notice
// clock jumps and re-join more often; 300 before; `go test -count=1 -run
// TestSimulate .` without -race runs 1,000 and 1,000 fresh).
func init() { simRaceSeeds = 75 }
