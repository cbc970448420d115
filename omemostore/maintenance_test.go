package omemostore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemostore"
)

var errKilled = errors.New("test: process killed here")

// killedStore stops writing at its cut-th write, as the bridge killed during
// key maintenance (which runs outside a transaction).
type killedStore struct {
	*omemostore.Store
	cut, writes int
}

func (s *killedStore) write() error {
	s.writes++
	if s.writes >= s.cut {
		return errKilled
	}
	return nil
}

func (s *killedStore) PutIdentity(ctx context.Context, id *omemo.Identity) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.Store.PutIdentity(ctx, id)
}

func (s *killedStore) PutPreKeys(ctx context.Context, keys []omemo.PreKey) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.Store.PutPreKeys(ctx, keys)
}

func (s *killedStore) PutSignedPreKey(ctx context.Context, k *omemo.SignedPreKey) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.Store.PutSignedPreKey(ctx, k)
}

func (s *killedStore) RemoveSignedPreKey(ctx context.Context, id uint32) error {
	if err := s.write(); err != nil {
		return err
	}
	return s.Store.RemoveSignedPreKey(ctx, id)
}

// The bridge killed during a signed prekey rotation, started again and its
// bundle published, then the next rotation a week later: a contact that
// fetched the bundle in between still starts a session with it. (The
// signed prekey id used to be handed out again by the next rotation, whose
// upsert replaced the published key: the contact's key exchange then
// failed.) Likewise for a first setup killed half way.
func TestMaintenanceKilledKeepsPublishedKeys(t *testing.T) {
	ctx := context.Background()
	db := openSQLite(t)
	for _, step := range []string{"first setup", "rotation"} {
		for cut := 1; ; cut++ {
			account := fmt.Sprintf("%s-%d", step, cut)
			now := time.Unix(1_800_000_000, 0)
			opts := omemo.Options{Now: func() time.Time { return now }}
			if step == "rotation" {
				if err := omemo.NewManager(omemostore.New(db, account), "alice@localhost", opts).Setup(ctx); err != nil {
					t.Fatal(err)
				}
				now = now.Add(8 * 24 * time.Hour)
			}
			err := omemo.NewManager(&killedStore{Store: omemostore.New(db, account), cut: cut}, "alice@localhost", opts).Setup(ctx)
			if err == nil {
				break
			}
			if !errors.Is(err, errKilled) {
				t.Fatalf("%s killed at write %d: %v", step, cut, err)
			}

			alice := omemo.NewManager(omemostore.New(db, account), "alice@localhost", opts)
			if err := alice.Setup(ctx); err != nil {
				t.Fatalf("%s killed at write %d: Setup after: %v", step, cut, err)
			}
			published, err := alice.Bundle(ctx, omemo.V2)
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(8 * 24 * time.Hour)
			if err := alice.Setup(ctx); err != nil {
				t.Fatalf("%s killed at write %d: next rotation: %v", step, cut, err)
			}
			bob := omemo.NewManager(omemo.NewMemoryStore(), "bob@localhost", omemo.Options{})
			if err := bob.Setup(ctx); err != nil {
				t.Fatal(err)
			}
			to := omemo.Address{JID: "alice@localhost", Device: alice.DeviceID()}
			enc, errs, err := bob.Encrypt(ctx, omemo.V2, plaintext(omemo.V2, "bob@localhost", "hi"), []omemo.Recipient{{Address: to, Bundle: published}})
			if err != nil {
				t.Errorf("%s killed at write %d: bob encrypts with the bundle published after: %v %v", step, cut, err, errs)
				continue
			}
			if _, err := alice.Decrypt(ctx, enc, "bob@localhost"); err != nil {
				t.Errorf("%s killed at write %d: a key exchange on the bundle published after: %v", step, cut, err)
			}
		}
	}
}
