package msc

// Exported for the tests of package msc_test, which use package msctest
// (package msc's own tests cannot: msctest imports msc).
var (
	WaitFor        = waitFor
	FlushCallbacks = flushCallbacks
	WaitSides      = waitSides
	SidesHold      = sidesHold
	LivePeers      = livePeerIndexes
)

// The timing of the tests, and their deadline for polls.
const (
	TestingInterval = testInterval
	TestingWait     = testWait
	TestingSettle   = settle
)
