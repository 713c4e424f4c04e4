package msctest_test

import (
	"fmt"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/msctest"
)

// A test of code that runs a job on the master: three nodes, the master
// killed, another takes over; a partition, and its healing.
func Example() {
	// In a test: msctest.NewCluster(t, 3, ...), stopped by t.Cleanup.
	c := msctest.NewCluster(nil, 3, func(i int, o *msc.Options) {
		o.Keys = []string{"reports"}
	})
	defer c.Close()
	c.WaitMaster(0) // node 0 is the oldest
	fmt.Println("master:", c.Node(0).UID())

	c.Kill(0) // no leave message; its connections reset
	c.WaitMaster(1)
	fmt.Println("after the kill:", c.Node(1).UID(), c.Node(1).IsMasterByKey("reports"))

	c.Restart(0) // a new process, now the youngest
	c.Partition([]int{1}, []int{0, 2})
	c.WaitMaster(1) // alone on its side
	c.WaitMaster(2) // the oldest on the other side
	c.Heal()
	c.WaitMaster(1)
	fmt.Println("healed:", c.Node(1).UID())

	c.Pause(1, time.Second) // as SIGSTOP, then SIGCONT a second later
	c.WaitMaster(2)
	fmt.Println("while node1 is paused:", c.Node(2).UID())
	c.WaitMaster(1) // resumed, the oldest again
	// Output:
	// master: node0
	// after the kill: node1 true
	// healed: node1
	// while node1 is paused: node2
}
