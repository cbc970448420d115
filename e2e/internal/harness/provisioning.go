package harness

import (
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
