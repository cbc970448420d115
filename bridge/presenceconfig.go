package bridge

import (
	"errors"
	"fmt"
	"time"

	up "go.mau.fi/util/configupgrade"

	"github.com/mxomemo/xmpp-bridge/xmppclient"
)

// PresenceConfig is network.presence: presence both ways (presence.go).
type PresenceConfig struct {
	// Contacts bridges contacts' presence to their ghosts.
	Contacts bool `yaml:"contacts"`
	// MaxPerSecond bounds the ghost presence updates of one login.
	MaxPerSecond int `yaml:"max_per_second"`
	// Own is "matrix" (follow the Matrix user's presence) or a fixed show.
	Own string `yaml:"own"`
	// PollSeconds is how often the Matrix user's presence is read.
	PollSeconds int `yaml:"poll_seconds"`
	// OwnStatus is the status text when the Matrix user has none.
	OwnStatus string `yaml:"own_status"`
}

// ownFollowsMatrix is the value of Own that follows the Matrix user.
const ownFollowsMatrix = "matrix"

// ErrBadPresence is a network.presence setting out of range.
var ErrBadPresence = errors.New("bridge: network.presence: own must be matrix, available, away, xa or dnd; max_per_second and poll_seconds must not be negative (0: 5 and 60), poll_seconds at least 5")

func (c *PresenceConfig) validate() error {
	switch c.Own {
	case "", ownFollowsMatrix, "available", string(xmppclient.ShowAway), string(xmppclient.ShowXA), string(xmppclient.ShowDND):
	default:
		return fmt.Errorf("%w (own: %q)", ErrBadPresence, c.Own)
	}
	if c.MaxPerSecond < 0 || c.PollSeconds < 0 || (c.PollSeconds > 0 && c.PollSeconds < 5) {
		return fmt.Errorf("%w (max_per_second %d, poll_seconds %d)", ErrBadPresence, c.MaxPerSecond, c.PollSeconds)
	}
	return nil
}

// pushInterval is the least time between two ghost presence updates of a
// login.
func (c *PresenceConfig) pushInterval() time.Duration {
	n := c.MaxPerSecond
	if n <= 0 {
		n = 5
	}
	return time.Second / time.Duration(n)
}

func (c *PresenceConfig) pollInterval() time.Duration {
	if c.PollSeconds <= 0 {
		return time.Minute
	}
	return time.Duration(c.PollSeconds) * time.Second
}

// fixedShow is the configured own show when it does not follow Matrix.
func (c *PresenceConfig) fixedShow() (xmppclient.Show, bool) {
	switch c.Own {
	case "", ownFollowsMatrix:
		return xmppclient.ShowAvailable, false
	case "available":
		return xmppclient.ShowAvailable, true
	}
	return xmppclient.Show(c.Own), true
}

func upgradePresenceConfig(helper up.Helper) {
	helper.Copy(up.Bool, "presence", "contacts")
	helper.Copy(up.Int, "presence", "max_per_second")
	helper.Copy(up.Str, "presence", "own")
	helper.Copy(up.Int, "presence", "poll_seconds")
	helper.Copy(up.Str, "presence", "own_status")
}
