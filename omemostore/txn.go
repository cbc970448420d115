package omemostore

import (
	"context"
	"slices"

	"github.com/rs/zerolog"
)

// DoTxn runs fn in a transaction of the store's database, as
// dbutil.Database.DoTxn does, for the caller's writes that must commit with
// the Manager's (the decryption's inbox row). Knowing when the transaction
// is over lets the cache (cache.go) end the quiet of the keys fn wrote at
// once, and read again, outside, what fn read without a cache hit, so that
// the next transaction finds it cached. Inside a transaction ctx carries
// already, fn simply runs in it.
func (s *Store) DoTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	if inTxn(ctx, s.db) {
		return fn(ctx)
	}
	t := &txnKeys{}
	err := s.db.DoTxn(context.WithValue(ctx, txnKeysKey{s}, t), nil, fn)
	s.cache.done(t)
	if err == nil {
		s.cache.committed(t)
		s.warm(ctx, t.missed)
	}
	return err
}

// warm reads keys outside any transaction, which caches them.
func (s *Store) warm(ctx context.Context, keys []cacheKey) {
	slices.SortFunc(keys, func(a, b cacheKey) int {
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		if a.version != b.version {
			return int(a.version) - int(b.version)
		}
		switch {
		case a.jid < b.jid:
			return -1
		case a.jid > b.jid:
			return 1
		}
		return 0
	})
	var err error
	for _, k := range slices.Compact(keys) {
		switch k.kind {
		case 1:
			_, err = s.DeviceList(ctx, k.version, k.jid)
		case 2:
			_, err = s.TrustRecords(ctx, k.jid)
		}
		if err != nil {
			// Only the cache misses out: the next read goes to the database.
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Failed to read OMEMO device lists or trust for the cache")
			return
		}
	}
}
