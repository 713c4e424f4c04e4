package msc_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/msctest"
)

// The HTTP handler through a failover, on a cluster from msctest: /master
// moves to the new master, /healthz stays 200 where the view is fresh, and
// the metrics count the change. (The timing of the package's tests: a
// loaded machine running -race may delay a heartbeat by more than
// msctest's default WaitTimeout, and a change counted then is not the
// failover's.)
func TestHandlerFailover(t *testing.T) {
	c := msctest.NewCluster(t, 3, func(i int, o *msc.Options) {
		o.Interval, o.WaitTimeout = msc.TestingInterval, msc.TestingWait
		o.Keys = []string{"jobs"}
	})
	var mu sync.Mutex
	var seen []string // node 2's changes, for the failure message
	c.Node(2).OnChange(func(ch msc.Change) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s %+v", time.Now().Format("15:04:05.000000"), ch))
	})
	c.WaitMaster(0)
	get := func(i int, path string) (int, string) {
		t.Helper()
		rec := httptest.NewRecorder()
		c.Node(i).Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		body, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(body)
	}
	for i, want := range []int{http.StatusOK, http.StatusServiceUnavailable, http.StatusServiceUnavailable} {
		if code, body := get(i, "/master?key=jobs"); code != want {
			t.Fatalf("node %d /master?key=jobs: %d %q", i, code, body)
		}
	}
	msc.WaitFor(t, "all healthy", func() bool {
		for i := range 3 {
			if code, _ := get(i, "/healthz"); code != http.StatusOK {
				return false
			}
		}
		return true
	})

	// value returns the value of node 2's metric line that starts with
	// name, or -1.
	value := func(name string) int {
		_, body := get(2, "/metrics")
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				n, err := strconv.Atoi(v)
				if err == nil {
					return n
				}
			}
		}
		return -1
	}
	const (
		changes    = `msc_master_changes_total{key=""}`
		keyChanges = `msc_master_changes_total{key="jobs"}`
		live       = `msc_peers{state="live"}`
	)
	before, keyBefore := value(changes), value(keyChanges)

	killed := time.Now()
	c.Kill(0)
	c.WaitMaster(1)
	if code, body := get(1, "/master"); code != http.StatusOK {
		t.Fatalf("new master's /master: %d %q", code, body)
	}
	if code, body := get(2, "/master"); code != http.StatusServiceUnavailable || !strings.Contains(body, "node1") {
		t.Fatalf("node2's /master: %d %q", code, body)
	}
	msc.WaitFor(t, "the change counted", func() bool {
		return value(changes) == before+1 && value(keyChanges) == keyBefore+1 && value(live) == 1
	}, func() string {
		_, body := get(2, "/metrics")
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("before the kill (%s): %d and %d changes; node 2's changes:\n%s\nnode 2's metrics now:\n%s",
			killed.Format("15:04:05.000000"), before, keyBefore, strings.Join(seen, "\n"), body)
	})
}
