package msc

import (
	"testing"
	"time"
)

// TestSilenceWaitsOutALatePeer: a connection is closed as silent after
// silentAfter while the peer sends on time, but a peer whose own sends
// came late (its clock: a gap of more than 1.5 Intervals) is waited out
// until WaitTimeout for 10 Intervals of its clock after that.
func TestSilenceWaitsOutALatePeer(t *testing.T) {
	const iv, wait = 100 * time.Millisecond, 300 * time.Millisecond
	var f beatFilter
	at := int64(time.Hour) // the peer's clock
	frame := func(gap time.Duration) time.Duration {
		at += int64(gap)
		f.lateness(&beatView{sent: at}, iv)
		return f.silence(iv, wait)
	}
	for range 5 {
		if got := frame(iv); got != silentAfter(iv, wait) {
			t.Fatalf("on time: silence %v, want %v", got, silentAfter(iv, wait))
		}
	}
	if got := frame(iv + iv/2 + 1); got != wait {
		t.Fatalf("after a late send: silence %v, want %v", got, wait)
	}
	for i := range 9 {
		if got := frame(iv); got != wait {
			t.Fatalf("%d Intervals after a late send: silence %v, want %v", i+1, got, wait)
		}
	}
	if got := frame(iv); got != silentAfter(iv, wait) {
		t.Fatalf("10 Intervals after a late send: silence %v, want %v", got, silentAfter(iv, wait))
	}
	// A frame that arrives out of order (an earlier send time) is no gap.
	at -= int64(iv)
	if got := frame(0); got != silentAfter(iv, wait) {
		t.Fatalf("an older frame: silence %v, want %v", got, silentAfter(iv, wait))
	}
}
