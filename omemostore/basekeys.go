package omemostore

import (
	"context"
	"fmt"
	"time"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

var _ omemo.BaseKeyStore = (*Store)(nil)

// SeenBaseKey implements omemo.BaseKeyStore.
func (s *Store) SeenBaseKey(ctx context.Context, v omemo.Version, addr omemo.Address, baseKey []byte) (bool, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM omemo_base_key WHERE account=$1 AND version=$2 AND jid=$3 AND device_id=$4 AND base_key=$5`,
		s.account, int(v), addr.JID, int64(addr.Device), baseKey).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("failed to look up base key of %s: %w", addr, err)
	}
	return n > 0, nil
}

// PutBaseKey implements omemo.BaseKeyStore.
func (s *Store) PutBaseKey(ctx context.Context, v omemo.Version, addr omemo.Address, baseKey []byte, at time.Time) error {
	_, err := s.db.Exec(ctx, `INSERT INTO omemo_base_key (account, version, jid, device_id, base_key, seen_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (account, version, jid, device_id, base_key) DO NOTHING`,
		s.account, int(v), addr.JID, int64(addr.Device), baseKey, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("failed to save base key of %s: %w", addr, err)
	}
	return nil
}

// PruneBaseKeys implements omemo.BaseKeyStore.
func (s *Store) PruneBaseKeys(ctx context.Context, before time.Time) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM omemo_base_key WHERE account=$1 AND seen_at<$2`, s.account, before.UnixMilli()); err != nil {
		return fmt.Errorf("failed to prune base keys: %w", err)
	}
	return nil
}
