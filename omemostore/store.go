package omemostore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"go.mau.fi/util/dbutil"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// Store is an omemo.Store for one account.
type Store struct {
	db      *dbutil.Database
	account string
	cache   storeCache // device lists and trust records (cache.go)
}

var (
	_ omemo.Store          = (*Store)(nil)
	_ omemo.SessionChecker = (*Store)(nil)
)

// New returns the store of account (the UserLogin ID) in db, which must have
// had the migrations upgrades applied.
func New(db *dbutil.Database, account string) *Store {
	return &Store{db: db, account: account}
}

// Delete removes everything stored for the account: used when a login is
// deleted, so a later login of the same account gets a fresh device.
func (s *Store) Delete(ctx context.Context) error {
	defer s.cache.invalidate(cacheKey{}, inTxn(ctx, s.db), true, nil)
	defer s.cache.forgetSessions()
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, table := range []string{"omemo_identity", "omemo_prekey", "omemo_signed_prekey", "omemo_session", "omemo_device_list", "omemo_trust", "omemo_base_key"} {
			if _, err := s.db.Exec(ctx, "DELETE FROM "+table+" WHERE account=$1", s.account); err != nil {
				return fmt.Errorf("failed to delete from %s: %w", table, err)
			}
		}
		return nil
	})
}

func (s *Store) Identity(ctx context.Context) (*omemo.Identity, error) {
	var id omemo.Identity
	var device, nextPK, nextSPK int64
	err := s.db.QueryRow(ctx, `SELECT device_id, private_key, next_prekey_id, next_signed_prekey_id
		FROM omemo_identity WHERE account=$1`, s.account).Scan(&device, &id.PrivateKey, &nextPK, &nextSPK)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to load omemo identity: %w", err)
	}
	id.DeviceID, id.NextPreKeyID, id.NextSignedPreKeyID = uint32(device), uint32(nextPK), uint32(nextSPK)
	return &id, nil
}

func (s *Store) PutIdentity(ctx context.Context, id *omemo.Identity) error {
	_, err := s.db.Exec(ctx, `INSERT INTO omemo_identity (account, device_id, private_key, next_prekey_id, next_signed_prekey_id)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account) DO UPDATE SET device_id=excluded.device_id, private_key=excluded.private_key,
			next_prekey_id=excluded.next_prekey_id, next_signed_prekey_id=excluded.next_signed_prekey_id`,
		s.account, int64(id.DeviceID), id.PrivateKey, int64(id.NextPreKeyID), int64(id.NextSignedPreKeyID))
	if err != nil {
		return fmt.Errorf("failed to save omemo identity: %w", err)
	}
	return nil
}

func (s *Store) PreKey(ctx context.Context, id uint32) (*omemo.PreKey, error) {
	k := omemo.PreKey{ID: id}
	err := s.db.QueryRow(ctx, `SELECT private_key, public_key FROM omemo_prekey WHERE account=$1 AND id=$2`,
		s.account, int64(id)).Scan(&k.Private, &k.Public)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to load prekey %d: %w", id, err)
	}
	return &k, nil
}

func (s *Store) PreKeys(ctx context.Context) ([]omemo.PreKey, error) {
	rows, err := s.db.Query(ctx, `SELECT id, private_key, public_key FROM omemo_prekey WHERE account=$1 ORDER BY id`, s.account)
	if err != nil {
		return nil, fmt.Errorf("failed to list prekeys: %w", err)
	}
	var out []omemo.PreKey
	err = scanAll(rows, func(rows dbutil.Rows) error {
		var k omemo.PreKey
		var id int64
		if err := rows.Scan(&id, &k.Private, &k.Public); err != nil {
			return err
		}
		k.ID = uint32(id)
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list prekeys: %w", err)
	}
	return out, nil
}

func (s *Store) PutPreKeys(ctx context.Context, keys []omemo.PreKey) error {
	return s.db.DoTxn(ctx, nil, func(ctx context.Context) error {
		for _, k := range keys {
			_, err := s.db.Exec(ctx, `INSERT INTO omemo_prekey (account, id, private_key, public_key) VALUES ($1, $2, $3, $4)
				ON CONFLICT (account, id) DO UPDATE SET private_key=excluded.private_key, public_key=excluded.public_key`,
				s.account, int64(k.ID), k.Private, k.Public)
			if err != nil {
				return fmt.Errorf("failed to save prekey %d: %w", k.ID, err)
			}
		}
		return nil
	})
}

func (s *Store) RemovePreKey(ctx context.Context, id uint32) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM omemo_prekey WHERE account=$1 AND id=$2`, s.account, int64(id)); err != nil {
		return fmt.Errorf("failed to remove prekey %d: %w", id, err)
	}
	return nil
}

const signedPreKeyColumns = `id, private_key, public_key, signature_v03, signature_v2, created`

func scanSignedPreKey(row dbutil.Scannable) (*omemo.SignedPreKey, error) {
	var k omemo.SignedPreKey
	var id int64
	if err := row.Scan(&id, &k.Private, &k.Public, &k.SignatureV03, &k.SignatureV2, &k.Created); err != nil {
		return nil, err
	}
	k.ID = uint32(id)
	return &k, nil
}

func (s *Store) SignedPreKey(ctx context.Context, id uint32) (*omemo.SignedPreKey, error) {
	k, err := scanSignedPreKey(s.db.QueryRow(ctx, `SELECT `+signedPreKeyColumns+` FROM omemo_signed_prekey WHERE account=$1 AND id=$2`,
		s.account, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to load signed prekey %d: %w", id, err)
	}
	return k, nil
}

func (s *Store) SignedPreKeys(ctx context.Context) ([]omemo.SignedPreKey, error) {
	rows, err := s.db.Query(ctx, `SELECT `+signedPreKeyColumns+` FROM omemo_signed_prekey WHERE account=$1 ORDER BY id`, s.account)
	if err != nil {
		return nil, fmt.Errorf("failed to list signed prekeys: %w", err)
	}
	var out []omemo.SignedPreKey
	err = scanAll(rows, func(rows dbutil.Rows) error {
		k, err := scanSignedPreKey(rows)
		if err == nil {
			out = append(out, *k)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list signed prekeys: %w", err)
	}
	return out, nil
}

func (s *Store) PutSignedPreKey(ctx context.Context, k *omemo.SignedPreKey) error {
	_, err := s.db.Exec(ctx, `INSERT INTO omemo_signed_prekey (account, `+signedPreKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (account, id) DO UPDATE SET private_key=excluded.private_key, public_key=excluded.public_key,
			signature_v03=excluded.signature_v03, signature_v2=excluded.signature_v2, created=excluded.created`,
		s.account, int64(k.ID), k.Private, k.Public, k.SignatureV03, k.SignatureV2, k.Created)
	if err != nil {
		return fmt.Errorf("failed to save signed prekey %d: %w", k.ID, err)
	}
	return nil
}

func (s *Store) RemoveSignedPreKey(ctx context.Context, id uint32) error {
	if _, err := s.db.Exec(ctx, `DELETE FROM omemo_signed_prekey WHERE account=$1 AND id=$2`, s.account, int64(id)); err != nil {
		return fmt.Errorf("failed to remove signed prekey %d: %w", id, err)
	}
	return nil
}

func (s *Store) Session(ctx context.Context, v omemo.Version, addr omemo.Address) ([]byte, error) {
	var record []byte
	err := s.db.QueryRow(ctx, `SELECT record FROM omemo_session WHERE account=$1 AND version=$2 AND jid=$3 AND device_id=$4`,
		s.account, int(v), addr.JID, int64(addr.Device)).Scan(&record)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to load %s session with %s: %w", v, addr, err)
	}
	return record, nil
}

// HasSession implements omemo.SessionChecker: an index lookup that does not
// read the record.
func (s *Store) HasSession(ctx context.Context, v omemo.Version, addr omemo.Address) (bool, error) {
	var one int
	err := s.db.QueryRow(ctx, `SELECT 1 FROM omemo_session WHERE account=$1 AND version=$2 AND jid=$3 AND device_id=$4`,
		s.account, int(v), addr.JID, int64(addr.Device)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("failed to look up %s session with %s: %w", v, addr, err)
	}
	return true, nil
}

func (s *Store) PutSession(ctx context.Context, v omemo.Version, addr omemo.Address, record []byte) error {
	_, err := s.db.Exec(ctx, `INSERT INTO omemo_session (account, version, jid, device_id, record) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account, version, jid, device_id) DO UPDATE SET record=excluded.record`,
		s.account, int(v), addr.JID, int64(addr.Device), record)
	// Forgotten whatever the outcome; a write that succeeded in a
	// transaction of Store.DoTxn is known again once that commits.
	var t *txnKeys
	if err == nil && inTxn(ctx, s.db) {
		t = txnKeysOf(ctx, s)
	}
	s.cache.sessionWritten(sessionKey{v, addr}, record, t)
	if err != nil {
		return fmt.Errorf("failed to save %s session with %s: %w", v, addr, err)
	}
	return nil
}

func (s *Store) RemoveSession(ctx context.Context, v omemo.Version, addr omemo.Address) error {
	defer s.cache.sessionWritten(sessionKey{v, addr}, nil, nil)
	_, err := s.db.Exec(ctx, `DELETE FROM omemo_session WHERE account=$1 AND version=$2 AND jid=$3 AND device_id=$4`,
		s.account, int(v), addr.JID, int64(addr.Device))
	if err != nil {
		return fmt.Errorf("failed to remove %s session with %s: %w", v, addr, err)
	}
	return nil
}

// A device list is one row holding the list as JSON: it is always read and
// replaced whole, and "known but empty" must differ from "never fetched".
func (s *Store) DeviceList(ctx context.Context, v omemo.Version, jid string) ([]omemo.Device, error) {
	k := cacheKey{kind: 1, version: v, jid: jid}
	txn := inTxn(ctx, s.db)
	cached, _, hit, gen := s.cache.lookup(k, txn)
	if hit {
		return cached, nil
	}
	devices, err := s.readDeviceList(ctx, v, jid)
	if err == nil && devices != nil && !txn {
		s.cache.put(k, gen, devices, nil)
	}
	// An unknown list is not cached: reading it again would not help.
	if t := txnKeysOf(ctx, s); txn && t != nil && devices != nil {
		t.missed = append(t.missed, k)
	}
	return devices, err
}

func (s *Store) readDeviceList(ctx context.Context, v omemo.Version, jid string) ([]omemo.Device, error) {
	var raw []byte
	err := s.db.QueryRow(ctx, `SELECT devices FROM omemo_device_list WHERE account=$1 AND version=$2 AND jid=$3`,
		s.account, int(v), jid).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("failed to load %s device list of %s: %w", v, jid, err)
	}
	devices := []omemo.Device{}
	if err = json.Unmarshal(raw, &devices); err != nil {
		return nil, fmt.Errorf("failed to parse stored %s device list of %s: %w", v, jid, err)
	}
	return devices, nil
}

func (s *Store) PutDeviceList(ctx context.Context, v omemo.Version, jid string, devices []omemo.Device) error {
	if devices == nil {
		devices = []omemo.Device{}
	}
	raw, err := json.Marshal(devices)
	if err != nil {
		return fmt.Errorf("failed to encode %s device list of %s: %w", v, jid, err)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO omemo_device_list (account, version, jid, devices) VALUES ($1, $2, $3, $4)
		ON CONFLICT (account, version, jid) DO UPDATE SET devices=excluded.devices`,
		s.account, int(v), jid, string(raw))
	s.cache.invalidate(cacheKey{kind: 1, version: v, jid: jid}, inTxn(ctx, s.db), false, txnKeysOf(ctx, s))
	if err != nil {
		return fmt.Errorf("failed to save %s device list of %s: %w", v, jid, err)
	}
	return nil
}

func (s *Store) TrustRecords(ctx context.Context, jid string) ([]omemo.TrustRecord, error) {
	k := cacheKey{kind: 2, jid: jid}
	txn := inTxn(ctx, s.db)
	_, cached, hit, gen := s.cache.lookup(k, txn)
	if hit {
		return cached, nil
	}
	out, err := s.readTrustRecords(ctx, jid)
	if err == nil && !txn {
		s.cache.put(k, gen, nil, out)
	}
	if t := txnKeysOf(ctx, s); txn && t != nil {
		t.missed = append(t.missed, k)
	}
	return out, err
}

func (s *Store) readTrustRecords(ctx context.Context, jid string) ([]omemo.TrustRecord, error) {
	rows, err := s.db.Query(ctx, `SELECT device_id, identity_key, trust FROM omemo_trust WHERE account=$1 AND jid=$2 ORDER BY device_id`,
		s.account, jid)
	if err != nil {
		return nil, fmt.Errorf("failed to list trust records of %s: %w", jid, err)
	}
	var out []omemo.TrustRecord
	err = scanAll(rows, func(rows dbutil.Rows) error {
		rec := omemo.TrustRecord{JID: jid}
		var device int64
		var level int
		if err := rows.Scan(&device, &rec.IdentityKey, &level); err != nil {
			return err
		}
		rec.Device, rec.Level = uint32(device), omemo.TrustLevel(level)
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list trust records of %s: %w", jid, err)
	}
	return out, nil
}

func (s *Store) PutTrust(ctx context.Context, rec omemo.TrustRecord) error {
	_, err := s.db.Exec(ctx, `INSERT INTO omemo_trust (account, jid, device_id, identity_key, trust) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account, jid, device_id, identity_key) DO UPDATE SET trust=excluded.trust`,
		s.account, rec.JID, int64(rec.Device), rec.IdentityKey, int(rec.Level))
	s.cache.invalidate(cacheKey{kind: 2, jid: rec.JID}, inTxn(ctx, s.db), false, txnKeysOf(ctx, s))
	if err != nil {
		return fmt.Errorf("failed to save trust of %s/%d: %w", rec.JID, rec.Device, err)
	}
	return nil
}

func scanAll(rows dbutil.Rows, fn func(dbutil.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
