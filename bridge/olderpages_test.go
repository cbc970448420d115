package bridge

import (
	"errors"
	"fmt"
	"testing"

	"mellium.im/xmpp/history"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// TestPageBackward: the history command's backward walk stops once n
// messages are kept, at the archive's start, or at a failed page (an error
// only on the first), and reports the oldest id read.
func TestPageBackward(t *testing.T) {
	// An archive of 10 messages a0..a9, read newest page first.
	page := func(q history.Query) ([]xmppclient.Archived, history.Result) {
		end := 10
		if q.PageID != "" {
			fmt.Sscanf(q.PageID, "a%d", &end)
		}
		start := max(end-int(q.Limit), 0)
		var got []xmppclient.Archived
		for i := start; i < end; i++ {
			got = append(got, xmppclient.Archived{ArchiveID: fmt.Sprintf("a%d", i)})
		}
		res := history.Result{Complete: start == 0}
		if len(got) > 0 {
			res.Set.First.ID = got[0].ArchiveID
		}
		return got, res
	}
	for _, tc := range []struct {
		name         string
		n            int
		failPage     int // 1-based page that fails, 0 for none
		keepEvery    int // keep one message of this many (1: all)
		wantKept     int
		wantOldest   string
		wantComplete bool
		wantErr      bool
	}{
		{"enough in one page", 3, 0, 1, 3, "a7", false, false},
		{"the whole archive", 20, 0, 1, 10, "a0", true, false},
		{"pages until n kept", 3, 0, 2, 3, "a4", false, false},
		{"first page fails", 3, 1, 1, 0, "", false, true},
		{"a later page fails", 4, 2, 2, 2, "a6", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, kept := 0, 0
			fetch := func(q history.Query) ([]xmppclient.Archived, history.Result, error) {
				calls++
				if calls == tc.failPage {
					return nil, history.Result{}, errors.New("no answer")
				}
				got, res := page(q)
				return got, res, nil
			}
			oldest, complete, err := pageBackward(history.Query{Last: true}, tc.n, fetch, func(got []xmppclient.Archived) int {
				k := 0
				for _, a := range got {
					var i int
					fmt.Sscanf(a.ArchiveID, "a%d", &i)
					if i%tc.keepEvery == 0 {
						k++
					}
				}
				kept += k
				return k
			})
			if (err != nil) != tc.wantErr || kept != tc.wantKept || oldest != tc.wantOldest || complete != tc.wantComplete {
				t.Errorf("kept %d, oldest %q, complete %v, err %v; want %d, %q, %v, error %v", kept, oldest, complete, err, tc.wantKept, tc.wantOldest, tc.wantComplete, tc.wantErr)
			}
		})
	}
}
