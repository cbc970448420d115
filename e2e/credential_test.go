package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"mellium.im/xmpp/jid"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
)

// loginMetadata is the user_login metadata of account, decoded.
func (s *stack) loginMetadata(t testing.TB, account jid.JID) (raw string, meta map[string]any) {
	t.Helper()
	rows := s.query(t, "SELECT metadata FROM user_login WHERE id = ?", account.String())
	if len(rows) != 1 {
		t.Fatalf("%d user_login rows for %s, want 1", len(rows), account)
	}
	if err := json.Unmarshal([]byte(rows[0]), &meta); err != nil {
		t.Fatalf("user_login metadata of %s: %v", account, err)
	}
	return rows[0], meta
}

// checkPasswordSealed fails unless the login's row has the sealed password and no trace of the
// plaintext one.
func (s *stack) checkPasswordSealed(t testing.TB, account jid.JID, password string) {
	t.Helper()
	raw, meta := s.loginMetadata(t, account)
	if strings.Contains(raw, password) {
		t.Errorf("the %s database has %s's plaintext password in user_login.metadata", s.backend, account)
	}
	if _, ok := meta["password"]; ok {
		t.Errorf("user_login.metadata of %s still has a \"password\" field", account)
	}
	if enc, _ := meta["password_enc"].(string); !strings.HasPrefix(enc, "v1:") {
		t.Errorf("user_login.metadata of %s has no sealed password (password_enc = %q)", account, enc)
	}
}

// exec changes the bridge's database; only while the bridge is stopped.
func (s *stack) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if s.bridge.Running() {
		t.Fatal("exec on the bridge's database while the bridge runs")
	}
	db, q := s.openDB(t, false, q)
	defer db.Close()
	ctx, cancel := stepCtx()
	defer cancel()
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		t.Fatalf("%s on the bridge's %s database: %v", q, s.backend, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.Fatalf("%s changed %d rows (%v), want 1", q, n, err)
	}
}

// credentialKey reads or replaces network.credential_key in the bridge's config file.
func (s *stack) credentialKey(t testing.TB, replace string) string {
	t.Helper()
	raw, err := os.ReadFile(s.cfg.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	network, _ := cfg["network"].(map[string]any)
	old, _ := network["credential_key"].(string)
	if replace != "" {
		network["credential_key"] = replace
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.cfg.ConfigPath(), out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return old
}

// waitReconnected waits until the bridge's session of alice shows up at alice's phone, then
// checks that a message from bob reaches the portal.
func (sc *scenario) waitReconnected(t *testing.T, presCur int, what string) {
	t.Helper()
	ctx, cancel := stepCtx()
	defer cancel()
	if _, err := sc.phone.WaitPresence(ctx, presCur, func(p harness.ReceivedPresence) bool {
		from, err := jid.Parse(p.From)
		return err == nil && p.Type == "" && from.Bare().Equal(sc.alice) && !from.Equal(sc.phone.JID)
	}); err != nil {
		t.Fatalf("the bridge did not reconnect alice's account %s: %v", what, err)
	}
	body := uniq("after restart " + what)
	if err := sc.bobC.SendChat(ctx, sc.alice, "", "", body); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.user.WaitEvent(ctx, sc.bobRoom, 0, harness.IsMessage(sc.ghost(sc.bob), body)); err != nil {
		t.Fatalf("%q did not reach bob's portal %s: %v", body, what, err)
	}
	sc.bobBodies = append(sc.bobBodies, body)
}

// testCredentialsAtRest: the stored password is sealed; a plaintext row of an older version still
// connects after a restart and is sealed by it; a credential key that is not the one the password
// was sealed with gives BAD_CREDENTIALS with the reason, and the old key brings the login back.
func (sc *scenario) testCredentialsAtRest(t *testing.T) {
	sc.needBobRoom(t)
	sc.checkPasswordSealed(t, sc.alice, sc.alicePW)
	if n := sc.bridge.CountLog(sc.alicePW); n != 0 {
		t.Errorf("the bridge log has alice's password %d times", n)
	}

	t.Run("LegacyPlaintextRow", func(t *testing.T) {
		_, meta := sc.loginMetadata(t, sc.alice)
		delete(meta, "password_enc")
		meta["password"] = sc.alicePW
		legacy, err := json.Marshal(meta)
		if err != nil {
			t.Fatal(err)
		}
		presCur := sc.phone.PresenceCursor()
		mgmtCur := sc.user.Cursor(sc.mgmt)
		sc.restartBridge(t, func() {
			sc.exec(t, "UPDATE user_login SET metadata = ? WHERE id = ?", string(legacy), sc.alice.String())
		})
		sc.waitReconnected(t, presCur, "from a plaintext row")
		// The row was sealed when the login was loaded, before it connected.
		sc.checkPasswordSealed(t, sc.alice, sc.alicePW)
		for _, evt := range sc.user.Timeline(sc.mgmt)[mgmtCur:] {
			if harness.StateNotice(sc.alice.String(), "BAD_CREDENTIALS")(evt) {
				t.Errorf("BAD_CREDENTIALS after the migration: %q", harness.Body(evt))
			}
		}
	})

	t.Run("OtherKey", func(t *testing.T) {
		other := make([]byte, 32)
		if _, err := rand.Read(other); err != nil {
			t.Fatal(err)
		}
		var original string
		mgmtCur := sc.user.Cursor(sc.mgmt)
		sc.restartBridge(t, func() {
			original = sc.credentialKey(t, base64.StdEncoding.EncodeToString(other))
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		evt, _, err := sc.user.WaitEvent(ctx, sc.mgmt, mgmtCur, harness.StateNotice(sc.alice.String(), "BAD_CREDENTIALS"))
		if err != nil {
			t.Errorf("no BAD_CREDENTIALS state notice for %s with another credential key: %v", sc.alice, err)
		} else if body := harness.Body(evt); !strings.Contains(body, "credential key in the config does not match") {
			t.Errorf("BAD_CREDENTIALS notice %q does not name the credential key", body)
		}
		// The sealed password is kept for the right key.
		sc.checkPasswordSealed(t, sc.alice, sc.alicePW)
		presCur := sc.phone.PresenceCursor()
		sc.restartBridge(t, func() { sc.credentialKey(t, original) })
		sc.waitReconnected(t, presCur, "with the original credential key back")
	})
	if n := sc.bridge.CountLog(sc.alicePW); n != 0 {
		t.Errorf("the bridge log has alice's password %d times", n)
	}
}
