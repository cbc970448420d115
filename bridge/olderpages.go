package bridge

import (
	"mellium.im/xmpp/history"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// pageBackward walks an archive from q backwards, newest page first, for
// the `history` command (1:1 and rooms): fetch asks for one page, take keeps
// what it wants of it (oldest first) and says how many messages that adds,
// until n are kept, the archive ends or backfillMaxPages were read. oldest
// is the archive id of the oldest message read (the next call's cursor);
// complete says the archive has nothing older. A failed first page is an
// error; a later one ends the walk with what was kept.
func pageBackward(q history.Query, n int, fetch func(history.Query) ([]xmppclient.Archived, history.Result, error), take func([]xmppclient.Archived) int) (oldest string, complete bool, err error) {
	kept := 0
	for page := 0; page < backfillMaxPages && kept < n; page++ {
		q.Limit = uint64(n - kept)
		got, res, err := fetch(q)
		if err != nil {
			if page == 0 {
				return "", false, err
			}
			break
		}
		if len(got) > 0 {
			oldest = got[0].ArchiveID
		}
		kept += take(got)
		next := res.Set.First.ID
		if res.Complete || len(got) == 0 || next == "" || next == q.PageID {
			return oldest, true, nil
		}
		q.PageID = next
	}
	return oldest, false, nil
}
