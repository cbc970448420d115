package bridge

import (
	"regexp"
	"testing"
)

func TestRoomLocalpart(t *testing.T) {
	for _, tc := range []struct{ name, prefix string }{
		{"Trip planning", "trip-planning-"},
		{"  Ünïcode & symbols!! 2026 ", "n-code-symbols-2026-"},
		{"", "group-"},
		{"!!!", "group-"},
		{"a very long group name that goes on and on", "a-very-long-group-name-t"},
	} {
		got := roomLocalpart(tc.name)
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(tc.prefix) + `-?[a-z0-9]{8}$`).MatchString(got) {
			t.Errorf("roomLocalpart(%q) = %q, want %s + 8 random", tc.name, got, tc.prefix)
		}
	}
	if a, b := roomLocalpart("x"), roomLocalpart("x"); a == b {
		t.Error("two rooms of one name got the same address")
	}
}
