package msc

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want error
	}{
		{"empty key", Options{}, ErrEmptyKey},
		{"empty key aes256", Options{Algorithm: "aes256"}, ErrEmptyKey},
		{"unknown algorithm", Options{Key: "k", Algorithm: "des"}, ErrUnknownAlgorithm},
		{"negative interval", Options{Key: "k", Interval: -1}, ErrInvalidOption},
		{"negative wait", Options{Key: "k", WaitTimeout: -1}, ErrInvalidOption},
		{"negative discover period", Options{Key: "k", DiscoverEvery: -1}, ErrInvalidOption},
		{"wait shorter than interval", Options{Key: "k", Interval: time.Second, WaitTimeout: time.Millisecond}, ErrInvalidOption},
		{"wait under 2*interval", Options{Key: "k", Interval: 100 * time.Millisecond, WaitTimeout: 150 * time.Millisecond}, ErrInvalidOption},
		{"port out of range", Options{Key: "k", Port: 70000}, ErrInvalidOption},
		{"uid too long", Options{Key: "k", UID: strings.Repeat("u", MaxUIDLen+1)}, ErrInvalidOption},
		{"empty key name", Options{Key: "k", Keys: []string{""}}, ErrInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.o)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want %v", err, tt.want)
			}
			if m != nil {
				t.Fatal("a node returned with an error")
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	keys := []string{"b", "a", "b"}
	o := Options{Key: "k", Keys: keys}
	before := time.Now()
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	c := m.cfg
	if c.Algorithm != "aes128" || c.Port != 8778 || c.Interval != 100*time.Millisecond || c.WaitTimeout != 300*time.Millisecond {
		t.Fatalf("defaults: %+v", c.Options)
	}
	if len(c.UID) != 16 || c.Logger == nil || c.StartTime.Before(before.Round(0)) {
		t.Fatalf("defaults: uid %q start %v", c.UID, c.StartTime)
	}
	if o.Algorithm != "" || o.UID != "" || o.Interval != 0 {
		t.Fatal("New wrote to the caller's options")
	}
	c.Keys[0] = "changed"
	if keys[0] != "b" {
		t.Fatal("New kept the caller's key slice")
	}
	if got := m.Keys(); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("Keys() = %v", got)
	}
	m2, _ := New(Options{Key: "k"})
	if m2.UID() == m.UID() {
		t.Fatal("two nodes got the same random UID")
	}
	if _, err := New(Options{Algorithm: "no"}); err != nil {
		t.Fatalf("algorithm no without key: %v", err)
	}
	if m, _ := New(Options{Key: "k", Interval: time.Second}); m.cfg.WaitTimeout != 3*time.Second {
		t.Fatalf("WaitTimeout default %v", m.cfg.WaitTimeout)
	}
}

func TestServerConfig(t *testing.T) {
	m, _ := New(Options{Key: "node key", Algorithm: "aes256"})
	if err := m.AddServer("p", ServerConfig{}); !errors.Is(err, ErrInvalidOption) {
		t.Fatalf("no port: %v", err)
	}
	if err := m.AddServer("p", ServerConfig{Port: 1, Algorithm: "rot13"}); !errors.Is(err, ErrUnknownAlgorithm) {
		t.Fatalf("bad algorithm: %v", err)
	}
	m2, _ := New(Options{Algorithm: "no"})
	if err := m2.AddServer("p", ServerConfig{Port: 1, Algorithm: "aes128"}); !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("aes without key: %v", err)
	}
	c, err := ServerConfig{Port: 5}.fill(m.cfg)
	if err != nil || c.Host != "127.0.0.1" || c.Algorithm != "aes256" || c.Key != "node key" {
		t.Fatalf("fill: %+v %v", c, err)
	}
	if err := m.RemoveServer("nope"); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("RemoveServer: %v", err)
	}
}

func TestSecretsNotLogged(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, nil))
	log.Info("x", "opts", Options{Key: "hunter2"}, "server", ServerConfig{Key: "hunter3", Port: 1})
	if strings.Contains(b.String(), "hunter") {
		t.Fatalf("secret in log: %s", b.String())
	}
}
