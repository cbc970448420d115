package xmppclient

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestWatermark(t *testing.T) {
	type step struct {
		op   string // track, ok, fail, reset, stop
		id   string
		want string // the cursor after the step ("" = unchanged)
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{"track", "a", ""}, {"track", "b", ""}, {"ok", "a", "a"}, {"ok", "b", "b"}}},
		{"later one stored first does not move it", []step{
			{"track", "a", ""}, {"track", "b", ""}, {"track", "c", ""},
			{"ok", "c", ""}, {"ok", "b", ""}, {"ok", "a", "c"},
		}},
		{"a failure stops it", []step{
			{"track", "a", ""}, {"track", "b", ""}, {"track", "c", ""},
			{"ok", "a", "a"}, {"fail", "b", ""}, {"ok", "c", ""},
		}},
		{"an id seen twice counts once", []step{
			{"track", "a", ""}, {"track", "a", ""}, {"track", "b", ""}, {"ok", "a", "a"}, {"ok", "b", "b"},
		}},
		{"settlements of an earlier session do not count", []step{
			{"track", "a", ""}, {"reset", "", ""}, {"track", "b", ""}, {"ok", "a", ""}, {"ok", "b", "b"},
		}},
		{"a new session retries what failed", []step{
			{"track", "a", ""}, {"fail", "a", ""}, {"reset", "", ""}, {"track", "a", ""}, {"ok", "a", "a"},
		}},
		{"stopped: nothing moves", []step{
			{"track", "a", ""}, {"stop", "", ""}, {"ok", "a", ""}, {"track", "b", ""}, {"ok", "b", ""},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := NewCursor()
			w.Reset()
			gens := map[string]uint64{} // the session each id was tracked in
			for i, s := range tc.steps {
				got := ""
				switch s.op {
				case "track":
					gens[s.id], _ = w.track(s.id)
				case "ok", "fail":
					got, _ = w.settle(gens[s.id], s.id, s.op == "ok")
				case "reset":
					w.Reset()
				case "stop":
					w.Stop()
				}
				if got != s.want {
					t.Fatalf("step %d (%s %s): cursor moved to %q, want %q", i, s.op, s.id, got, s.want)
				}
			}
		})
	}
}

// TestWatermarkCrash: messages 0..n-1 of the archive go through the steps of the XMPP -> Matrix
// path in a random interleaving (tracked in archive order; handed to bridgev2; sent to Matrix;
// stored or failed; settled), and the process dies after each step in turn. Whatever the crash
// point, every message after the saved cursor that is not stored is still ahead of the cursor
// (the next catch-up fetches it), and everything at or before the cursor is stored.
func TestWatermarkCrash(t *testing.T) {
	const n = 12
	for seed := range 200 {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		w := NewCursor()
		gen := w.Reset()
		id := func(i int) string { return fmt.Sprintf("arch-%02d", i) }
		stored := map[int]bool{}
		cursor := -1 // the saved cursor, as an index into the archive
		// Each message's remaining steps; a step is run when picked.
		type msg struct{ step int }
		msgs := make([]msg, n)
		tracked := 0
		check := func(where string) {
			for i := 0; i <= cursor; i++ {
				if !stored[i] {
					t.Fatalf("seed %d, crash after %s: cursor at %s but %s is not stored", seed, where, id(cursor), id(i))
				}
			}
		}
		for {
			// Candidates: the next message to track (archive order), or any tracked message's next step.
			var cands []int
			if tracked < n {
				cands = append(cands, -1)
			}
			for i := range tracked {
				if msgs[i].step < 3 {
					cands = append(cands, i)
				}
			}
			if len(cands) == 0 {
				break
			}
			c := cands[r.IntN(len(cands))]
			var where string
			if c == -1 {
				if _, ok := w.track(id(tracked)); !ok {
					t.Fatalf("tracking %s refused", id(tracked))
				}
				where = "receiving " + id(tracked)
				tracked++
			} else {
				m := &msgs[c]
				m.step++
				switch m.step {
				case 1:
					where = "queueing " + id(c)
				case 2:
					// Sent to Matrix; stored by bridgev2 most of the time.
					stored[c] = r.IntN(10) != 0
					where = "sending " + id(c)
				case 3:
					if cur, moved := w.settle(gen, id(c), stored[c]); moved {
						fmt.Sscanf(cur, "arch-%d", &cursor)
					}
					where = "settling " + id(c)
				}
			}
			check(where)
		}
		// Without failures the cursor reaches the end.
		all := true
		for i := range n {
			all = all && stored[i]
		}
		if all && cursor != n-1 {
			t.Fatalf("seed %d: all stored but cursor at %d", seed, cursor)
		}
	}
}

func TestWatermarkStoppedUntilFirstCatchUp(t *testing.T) {
	w := NewCursor()
	if _, ok := w.track("a"); ok {
		t.Fatal("a live message before the first catch-up was tracked")
	}
}

// TestAck: an Ack is done once; a message handed off is acknowledged by
// whoever took it, not by Release; one never handed off is released as
// done; a nil Ack (an id not tracked) ignores everything.
func TestAck(t *testing.T) {
	w := NewCursor()
	w.Reset()
	type outcome struct {
		id, cur      string
		moved, saved bool
	}
	var got []outcome
	settled := func(_ context.Context, id, cur string, moved, stored bool) {
		got = append(got, outcome{id, cur, moved, stored})
	}
	ctx := context.Background()
	a := w.Track("a", settled)
	b := w.Track("b", settled)
	if w.Track("a", settled) != nil {
		t.Fatal("an id seen twice got a second Ack")
	}
	b.HandOff()
	b.Release(ctx) // handed off: bridgev2 acknowledges it, not Release
	if len(got) != 0 {
		t.Fatalf("released a handed-off Ack: %+v", got)
	}
	b.Done(ctx, true)
	b.Done(ctx, false) // once only
	a.Release(ctx)     // never handed off: done
	want := []outcome{{"b", "", false, true}, {"a", "b", true, true}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("outcomes %+v, want %+v", got, want)
	}
	var none *Ack
	none.HandOff()
	none.Release(ctx)
	none.Done(ctx, false)
	if none.Cursor() != nil || none.ID() != "" {
		t.Error("a nil Ack has a cursor or id")
	}
}
