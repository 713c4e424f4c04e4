package main

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestStoreFences(t *testing.T) {
	s := newStore()
	for _, w := range []struct {
		term uint64
		ok   bool
	}{{1, true}, {1, true}, {3, true}, {2, false}, {3, true}, {1, false}, {4, true}} {
		err := s.write("w", w.term, "v")
		if w.ok != (err == nil) || !w.ok && !errors.Is(err, errFenced) {
			t.Errorf("write with term %d: %v", w.term, err)
		}
	}
	if highest, n := s.state("w"); highest != 4 || n != 5 {
		t.Fatalf("highest %d, %d writes; want 4 and 5", highest, n)
	}
}

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	t.Logf("output:\n%s", s)
	m := regexp.MustCompile(`(node\d) took over: the store has seen term (\d+), higher than (\d+)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatal("no takeover line")
	}
	newTerm, _ := strconv.Atoi(m[2])
	oldTerm, _ := strconv.Atoi(m[3])
	if newTerm <= oldTerm {
		t.Fatalf("new term %d not above %d", newTerm, oldTerm)
	}
	late := regexp.MustCompile(`tries a late write with its old term (\d+)\n.*store: refused: a newer master has written \(term (\d+) < (\d+)\)`).FindStringSubmatch(s)
	if late == nil || late[1] != m[3] || late[2] != m[3] {
		t.Fatalf("no refusal of the late write with term %s: %q", m[3], late)
	}
	// The new master may have written again, with a newer term still.
	if highest, _ := strconv.Atoi(late[3]); highest < newTerm {
		t.Fatalf("refused with highest term %d, below the takeover's %d", highest, newTerm)
	}
}
