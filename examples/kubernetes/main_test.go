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

// The large-cluster layout (voters.yaml, members.yaml): one voter and two
// members that know only the voter's address; the voter is the global
// master, each member sees only the voter, and each key has one master
// among the members.
func TestRunVoters(t *testing.T) {
	ports := []int{freePort(t), freePort(t), freePort(t)}
	voter := fmt.Sprintf("127.0.0.1:%d", ports[0])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make([]chan string, 3)
	errs := make(chan error, 3)
	for i, p := range ports {
		env := map[string]string{
			"MSC_KEY": "test", "MSC_PEERS": voter, "MSC_PORT": fmt.Sprint(p), "MSC_VOTERS": "msc-voter-0",
			"HTTP_ADDR": "127.0.0.1:0", "POD_NAME": fmt.Sprint("msc-member-", i), "JOB_EVERY": "10ms",
		}
		if i == 0 {
			env["POD_NAME"] = "msc-voter-0"
		} else {
			env["MSC_KEYS"] = "a, b, c, d"
		}
		addrs[i] = make(chan string, 1)
		go func() {
			errs <- run(ctx, func(k string) string { return env[k] }, slog.New(slog.DiscardHandler), func(a string) { addrs[i] <- a })
		}()
	}
	base := []string{"http://" + <-addrs[0], "http://" + <-addrs[1], "http://" + <-addrs[2]}
	type status struct {
		UID    string
		Master string
		Peers  []struct {
			UID  string
			Live bool
		}
		Keys []struct {
			Key      string
			IsMaster bool
			Master   string
		}
	}
	get := func(url string) (st status) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	why := ""
	deadline := time.Now().Add(20 * time.Second)
	for {
		why = ""
		masters := map[string][]string{}
		for i, b := range base {
			st := get(b + "/status")
			if st.Master != "msc-voter-0" {
				why = fmt.Sprintf("%s names master %q", st.UID, st.Master)
			}
			live := 0
			for _, p := range st.Peers {
				if p.Live {
					live++
					if i > 0 && p.UID != "msc-voter-0" {
						t.Fatalf("member %s has a live peer %s", st.UID, p.UID)
					}
				}
			}
			if want := map[bool]int{true: 2, false: 1}[i == 0]; live != want {
				why = fmt.Sprintf("%s sees %d live peers, want %d", st.UID, live, want)
			}
			for _, k := range st.Keys {
				if k.IsMaster {
					masters[k.Key] = append(masters[k.Key], st.UID)
				}
			}
		}
		for _, k := range []string{"a", "b", "c", "d"} {
			if len(masters[k]) != 1 {
				why = fmt.Sprintf("key %s: masters %v", k, masters[k])
			}
		}
		if why == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(why)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
