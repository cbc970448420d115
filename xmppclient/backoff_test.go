package xmppclient

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 2 * time.Second, Max: 30 * time.Second}
	ceilings := []time.Duration{2, 4, 8, 16, 30, 30}
	for i, ceil := range ceilings {
		ceil *= time.Second
		d := b.Next()
		if d < ceil/2 || d > ceil {
			t.Fatalf("step %d: %v not in [%v, %v]", i, d, ceil/2, ceil)
		}
	}
	b.Reset()
	if d := b.Next(); d > 2*time.Second {
		t.Fatalf("after reset: %v", d)
	}
}
