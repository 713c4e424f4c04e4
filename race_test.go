//go:build race

package msc

// The race detector makes the simulator about 6 times slower and finds
// nothing in it (each seed runs on one goroutine): under -race,
// TestSimulate runs fewer seeds, so that the suite stays under 3 minutes.
func init() { simRaceSeeds = 600 }
