package bridge

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRoomJoinsClaim: a second join of a room waits until the first is over, a join of another
// room does not, and a wait ends with its context.
func TestRoomJoinsClaim(t *testing.T) {
	var j roomJoins
	ctx := context.Background()
	release, err := j.claim(ctx, "a@muc.example")
	if err != nil {
		t.Fatal(err)
	}
	otherRelease, err := j.claim(ctx, "b@muc.example")
	if err != nil {
		t.Fatalf("another room: %v", err)
	}
	otherRelease()

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := j.claim(short, "a@muc.example"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second join while the first is in flight: %v, want to wait until its context ends", err)
	}

	got := make(chan error, 1)
	go func() {
		r, err := j.claim(ctx, "a@muc.example")
		if err == nil {
			r()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("the second join did not wait for the first (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second join still waits after the first is over")
	}
	// Everything released: the room is free again.
	r, err := j.claim(ctx, "a@muc.example")
	if err != nil {
		t.Fatal(err)
	}
	r()
}
