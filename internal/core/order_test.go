package core

import "testing"

func TestOrder(t *testing.T) {
	tests := []struct {
		sa   int64
		ua   string
		sb   int64
		ub   string
		want bool
	}{
		{1, "z", 2, "a", true},  // older first, whatever the uid
		{2, "a", 1, "z", false}, // younger after
		{1, "a", 1, "b", true},  // tie: smaller uid
		{1, "b", 1, "a", false},
		{1, "a", 1, "a", false}, // irreflexive
	}
	for _, tt := range tests {
		if got := less(tt.sa, tt.ua, tt.sb, tt.ub); got != tt.want {
			t.Errorf("less(%d,%s,%d,%s) = %v", tt.sa, tt.ua, tt.sb, tt.ub, got)
		}
	}
}
