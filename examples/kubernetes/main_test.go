package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// freePort returns a port free a moment ago.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Two replicas from one static list: one master, both healthy, metrics
// served; they stop on cancel.
func TestRun(t *testing.T) {
	ports := []int{freePort(t), freePort(t)}
	list := fmt.Sprintf("127.0.0.1:%d, 127.0.0.1:%d", ports[0], ports[1])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 2)
	errs := make(chan error, 2)
	for i, p := range ports {
		env := map[string]string{
			"MSC_KEY": "test", "MSC_PEERS": list, "MSC_PORT": fmt.Sprint(p),
			"HTTP_ADDR": "127.0.0.1:0", "POD_NAME": fmt.Sprint("pod", i), "JOB_EVERY": "10ms",
			"HTTP_ADVERTISE": fmt.Sprintf("pod%d.example:8080", i),
		}
		go func() {
			errs <- run(ctx, func(k string) string { return env[k] }, slog.New(slog.DiscardHandler), func(a string) { addrs <- a })
		}()
	}
	base := []string{"http://" + <-addrs, "http://" + <-addrs}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, _ := get(base[0] + "/master")
		b, _ := get(base[1] + "/master")
		h0, _ := get(base[0] + "/healthz")
		h1, _ := get(base[1] + "/healthz")
		if a+b == 200+503 && h0 == 200 && h1 == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/master %d and %d, /healthz %d and %d", a, b, h0, h1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, body := get(base[0] + "/metrics"); code != 200 || !strings.Contains(body, `msc_peers{state="live"} 1`) {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	// Both replicas name the master's advertised HTTP address.
	m := base[0]
	if a, _ := get(base[0] + "/master"); a != 200 {
		m = base[1]
	}
	_, body := get(m + "/status")
	var st struct{ UID string }
	if err := json.Unmarshal([]byte(body), &st); err != nil || (st.UID != "pod0" && st.UID != "pod1") {
		t.Fatalf("/status of the master: %v %s", err, body)
	}
	master := st.UID + ".example:8080\n"
	for _, b := range base {
		if code, body := get(b + "/leader"); code != 200 || body != master {
			t.Fatalf("/leader: %d %q, want %q", code, body, master)
		}
	}
	cancel()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRunNeedsPeers(t *testing.T) {
	err := run(context.Background(), func(k string) string { return map[string]string{"MSC_KEY": "k"}[k] }, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "MSC_DNS") {
		t.Fatalf("no peers configured: %v", err)
	}
}
