package xmppclient

import (
	"testing"

	"mellium.im/xmpp/jid"
)

// TestQueriesForget: a query answered in full (Done) is forgotten with
// everything kept for it, and its results, looked up before, keep what it
// was for; a query not yet answered (failed, timed out) is kept, so its late
// results are still ours; collected queries are forgotten by Finish only.
func TestQueriesForget(t *testing.T) {
	room := jid.MustParse("room@conference.example.org")
	tests := []struct {
		name   string
		add    func(q *Queries) string
		want   QueryInfo
		done   bool // its <fin/> came
		finish bool // a collected query's caller took its results
		kept   bool
	}{
		{"catch-up answered", func(q *Queries) string { return q.AddCatchUp(3) }, QueryInfo{Mode: QueryCatchUp, Seq: 3}, true, false, false},
		{"catch-up not answered", func(q *Queries) string { return q.AddCatchUp(3) }, QueryInfo{Mode: QueryCatchUp, Seq: 3}, false, false, true},
		{"room catch-up answered", func(q *Queries) string { return q.AddRoomCatchUp(room, 4) },
			QueryInfo{Mode: QueryRoomCatchUp, Seq: 4, Room: room.String()}, true, false, false},
		{"room catch-up not answered", func(q *Queries) string { return q.AddRoomCatchUp(room, 4) },
			QueryInfo{Mode: QueryRoomCatchUp, Seq: 4, Room: room.String()}, false, false, true},
		{"seed answered", func(q *Queries) string { return q.Add(QuerySeed) }, QueryInfo{Mode: QuerySeed}, true, false, false},
		{"room backfill: done alone keeps it", func(q *Queries) string { return q.AddRoomBackfill(room) },
			QueryInfo{Mode: QueryBackfill, Room: room.String()}, true, false, true},
		{"room backfill finished", func(q *Queries) string { return q.AddRoomBackfill(room) },
			QueryInfo{Mode: QueryBackfill, Room: room.String()}, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &Queries{}
			other := q.AddCatchUp(9)
			id := tt.add(q)
			in := Inbound{Kind: KindArchived, Archived: Archived{QueryID: id}}
			q.Resolve(&in)
			if in.Archived.Query != tt.want {
				t.Fatalf("resolved %+v, want %+v", in.Archived.Query, tt.want)
			}
			if tt.done {
				q.Done(id)
			}
			if tt.finish {
				q.Finish(id)
			}
			late := Inbound{Kind: KindArchived, Archived: Archived{QueryID: id}}
			q.Resolve(&late)
			if kept := late.Archived.Query == tt.want; kept != tt.kept {
				t.Errorf("a later result resolves to %+v: kept %v, want %v", late.Archived.Query, kept, tt.kept)
			}
			if want := map[bool]int{true: 2, false: 1}[tt.kept]; q.Len() != want {
				t.Errorf("%d queries remembered, want %d", q.Len(), want)
			}
			if !tt.kept {
				q.mu.Lock()
				left := len(q.seqs) + len(q.rooms) + len(q.pages)
				q.mu.Unlock()
				if left != 1 { // other's seq
					t.Errorf("%d entries left in the side maps, want only the other query's seq", left)
				}
			}
			if got := q.Lookup(other); got.Mode != QueryCatchUp || got.Seq != 9 {
				t.Errorf("the other query is now %+v", got)
			}
			if in.Archived.Query != tt.want {
				t.Errorf("the result looked up before changed: %+v", in.Archived.Query)
			}
		})
	}
}
