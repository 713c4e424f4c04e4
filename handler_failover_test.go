package msc_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msc-go/msc"
	"github.com/msc-go/msc/msctest"
)

// The HTTP handler through a failover, on a cluster from msctest: /master
// moves to the new master, /healthz stays 200 where the view is fresh, and
// the metrics count the change.
func TestHandlerFailover(t *testing.T) {
	c := msctest.NewCluster(t, 3, func(i int, o *msc.Options) { o.Keys = []string{"jobs"} })
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

	c.Kill(0)
	c.WaitMaster(1)
	if code, body := get(1, "/master"); code != http.StatusOK {
		t.Fatalf("new master's /master: %d %q", code, body)
	}
	if code, body := get(2, "/master"); code != http.StatusServiceUnavailable || !strings.Contains(body, "node1") {
		t.Fatalf("node2's /master: %d %q", code, body)
	}
	msc.WaitFor(t, "the change counted", func() bool {
		_, body := get(2, "/metrics")
		return strings.Contains(body, "\nmsc_master_changes_total{key=\"\"} 1\n") &&
			strings.Contains(body, "\nmsc_master_changes_total{key=\"jobs\"} 1\n") &&
			strings.Contains(body, "\nmsc_peers{state=\"live\"} 1\n")
	})
}
