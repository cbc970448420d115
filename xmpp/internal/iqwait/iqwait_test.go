package iqwait

import (
	"context"
	"testing"
	"time"
)

func TestWithMax(t *testing.T) {
	soon, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		max  time.Duration
		want time.Duration // upper bound of the remaining time
	}{
		{"no deadline", context.Background(), 5 * time.Second, 5 * time.Second},
		{"sooner caller deadline kept", soon, time.Hour, time.Second},
		{"later caller deadline shortened", soon, 10 * time.Millisecond, 10 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := WithMax(tc.ctx, tc.max)
			defer cancel()
			dl, ok := ctx.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			if left := time.Until(dl); left > tc.want || left <= 0 {
				t.Fatalf("deadline in %v, want within (0, %v]", left, tc.want)
			}
		})
	}
}
