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
	// PollPerSecond bounds the process's presence reads (all logins).
	PollPerSecond int `yaml:"poll_per_second"`
	// OwnStatus is the status text when the Matrix user has none.
	OwnStatus string `yaml:"own_status"`
}

// ownFollowsMatrix is the value of Own that follows the Matrix user.
const ownFollowsMatrix = "matrix"

// ErrBadPresence is a network.presence setting out of range.
var ErrBadPresence = errors.New("bridge: network.presence: own must be matrix, available, away, xa or dnd; max_per_second, poll_seconds and poll_per_second must not be negative (0: 5, 60 and 10), poll_seconds at least 5")

func (c *PresenceConfig) validate() error {
	switch c.Own {
	case "", ownFollowsMatrix, "available", string(xmppclient.ShowAway), string(xmppclient.ShowXA), string(xmppclient.ShowDND):
	default:
		return fmt.Errorf("%w (own: %q)", ErrBadPresence, c.Own)
	}
	if c.MaxPerSecond < 0 || c.PollSeconds < 0 || (c.PollSeconds > 0 && c.PollSeconds < 5) || c.PollPerSecond < 0 {
		return fmt.Errorf("%w (max_per_second %d, poll_seconds %d, poll_per_second %d)", ErrBadPresence, c.MaxPerSecond, c.PollSeconds, c.PollPerSecond)
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

// pollGap is the least time between two presence reads of the process.
func (c *PresenceConfig) pollGap() time.Duration {
	n := c.PollPerSecond
	if n <= 0 {
		n = 10
	}
	return time.Second / time.Duration(n)
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
	helper.Copy(up.Int, "presence", "poll_per_second")
	helper.Copy(up.Str, "presence", "own_status")
}
