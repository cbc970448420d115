package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"maunium.net/go/mautrix/id"
)

// Contact is one entry of the provisioning API's contact list.
type Contact struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Identifiers []string  `json:"identifiers"`
	MXID        id.UserID `json:"mxid"`
	DMRoomID    id.RoomID `json:"dm_room_mxid"`
}

// Contacts asks the bridge's provisioning API (GET /_matrix/provision/v3/contacts) for the contact
// list of a login of user, authenticating with the provisioning shared secret.
func Contacts(ctx context.Context, c *BridgeConfig, user id.UserID, loginID string) ([]Contact, error) {
	q := url.Values{"user_id": {user.String()}, "login_id": {loginID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.AppserviceURL()+"/_matrix/provision/v3/contacts?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.ProvisioningSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("contacts: HTTP %d: %s", resp.StatusCode, body)
	}
	var out struct {
		Contacts []Contact `json:"contacts"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("contacts: %w: %s", err, body)
	}
	return out.Contacts, nil
}

// ProvisionLogin logs user in to an XMPP account through the provisioning API's password flow
// (POST /v3/login/start/password, then the user_input step), authenticating with the shared
// secret as an integration would, and returns the new login's ID.
func ProvisionLogin(ctx context.Context, c *BridgeConfig, user id.UserID, in LoginInput) (string, error) {
	q := "?" + url.Values{"user_id": {user.String()}}.Encode()
	var start struct {
		LoginID string `json:"login_id"`
		Type    string `json:"type"`
		StepID  string `json:"step_id"`
	}
	if err := provisionPost(ctx, c, "/v3/login/start/password"+q, map[string]string{}, &start); err != nil {
		return "", fmt.Errorf("login start: %w", err)
	}
	if start.Type != "user_input" {
		return "", fmt.Errorf("login start: step type %q, want user_input", start.Type)
	}
	var done struct {
		Type     string `json:"type"`
		Complete struct {
			UserLoginID string `json:"user_login_id"`
		} `json:"complete"`
	}
	fields := map[string]string{"jid": in.JID, "password": in.Password, "server": in.Server, "insecure_tls_host": in.InsecureHost}
	path := "/v3/login/step/" + url.PathEscape(start.LoginID) + "/" + url.PathEscape(start.StepID) + "/user_input" + q
	if err := provisionPost(ctx, c, path, fields, &done); err != nil {
		return "", fmt.Errorf("login step: %w", err)
	}
	if done.Type != "complete" || done.Complete.UserLoginID == "" {
		return "", fmt.Errorf("login step: type %q without a login ID", done.Type)
	}
	return done.Complete.UserLoginID, nil
}

func provisionPost(ctx context.Context, c *BridgeConfig, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.AppserviceURL()+"/_matrix/provision"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.ProvisioningSecret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: %s", err, raw)
	}
	return nil
}

// CreateGroup asks the provisioning API (POST /v3/create_group/{type}) to create a group chat on
// the login, as an integration would, and returns the portal's Matrix room and ID.
func CreateGroup(ctx context.Context, c *BridgeConfig, user id.UserID, loginID, groupType string, params map[string]any) (room id.RoomID, portalID string, failed map[string]any, err error) {
	q := "?" + url.Values{"user_id": {user.String()}, "login_id": {loginID}}.Encode()
	var out struct {
		ID     string         `json:"id"`
		MXID   id.RoomID      `json:"mxid"`
		Failed map[string]any `json:"failed_participants"`
	}
	if err := provisionPost(ctx, c, "/v3/create_group/"+url.PathEscape(groupType)+q, params, &out); err != nil {
		return "", "", nil, fmt.Errorf("create_group: %w", err)
	}
	return out.MXID, out.ID, out.Failed, nil
}
