//go:build race

package msc

// The race detector makes the simulator about 6 times slower and finds
// nothing in it (each seed runs on one goroutine): under -race,
// TestSimulate runs fewer seeds, so that the suite stays under 3 minutes
// (300 since the members topology, whose seeds cost more, joined them;
// `go test -count=1 -run TestSimulate .` without -race runs 1,000 and
// 1,000 fresh).
func init() { simRaceSeeds = 300 }
