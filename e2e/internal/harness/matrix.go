package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// MatrixUser is a Matrix account driven by a test: it syncs in the background, keeps every
// timeline event per room in order, and joins the rooms it is invited to.
type MatrixUser struct {
	Client *mautrix.Client
	// JoinDelay is how long the user waits before accepting an invite, as a person would
	// (DefaultJoinDelay unless changed before the first invite). Joining at once races
	// bridgev2 on Dendrite: a portal's user may be invited twice within milliseconds (bridgev2's
	// own "ensure invited", then the member sync's invite with is_direct), and a join between
	// the two can lose to the second invite in state resolution, leaving the user invited.
	JoinDelay time.Duration

	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every new event
	timeline map[id.RoomID][]*event.Event
	joined   map[id.RoomID]bool
	invited  map[id.RoomID]id.UserID // room -> inviter
	syncErr  error
}

// DefaultJoinDelay is the pause before a MatrixUser accepts an invite.
const DefaultJoinDelay = 500 * time.Millisecond

// NewMatrixUser starts syncing as userID.
func NewMatrixUser(homeserverURL string, userID id.UserID, accessToken string) (*MatrixUser, error) {
	cli, err := mautrix.NewClient(homeserverURL, userID, accessToken)
	if err != nil {
		return nil, err
	}
	u := &MatrixUser{
		Client:    cli,
		JoinDelay: DefaultJoinDelay,
		changed:   make(chan struct{}),
		timeline:  map[id.RoomID][]*event.Event{},
		joined:    map[id.RoomID]bool{},
		invited:   map[id.RoomID]id.UserID{},
		done:      make(chan struct{}),
	}
	syncer := mautrix.NewDefaultSyncer()
	syncer.FilterJSON = &mautrix.Filter{Room: &mautrix.RoomFilter{Timeline: &mautrix.FilterPart{Limit: 200}}}
	syncer.OnEvent(u.onEvent)
	cli.Syncer = syncer
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	go func() {
		defer close(u.done)
		err := cli.SyncWithContext(ctx)
		if err != nil && ctx.Err() == nil {
			u.mu.Lock()
			u.syncErr = err
			u.mu.Unlock()
		}
	}()
	return u, nil
}

// Invited reports whether the user has been invited to room (whether or not it joined since).
func (u *MatrixUser) Invited(room id.RoomID) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.invited[room]
	return ok
}

// SetJoinDelay changes JoinDelay for the invites that arrive from now on (a test that wants
// to reject an invite holds the automatic acceptance back).
func (u *MatrixUser) SetJoinDelay(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.JoinDelay = d
}

// UserID is the user's MXID.
func (u *MatrixUser) UserID() id.UserID { return u.Client.UserID }

// Close stops syncing.
func (u *MatrixUser) Close() {
	u.cancel()
	<-u.done
}

func (u *MatrixUser) onEvent(ctx context.Context, evt *event.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if evt.Type == event.StateMember && evt.GetStateKey() == u.UserID().String() {
		switch evt.Content.AsMember().Membership {
		case event.MembershipInvite:
			if !u.joined[evt.RoomID] {
				if _, seen := u.invited[evt.RoomID]; !seen {
					u.invited[evt.RoomID] = evt.Sender
					go u.join(evt.RoomID)
				}
			}
		case event.MembershipJoin:
			u.joined[evt.RoomID] = true
		case event.MembershipLeave, event.MembershipBan:
			delete(u.joined, evt.RoomID)
		}
	}
	if evt.Mautrix.EventSource&event.SourceInvite == 0 {
		u.timeline[evt.RoomID] = append(u.timeline[evt.RoomID], evt)
	}
	close(u.changed)
	u.changed = make(chan struct{})
}

func (u *MatrixUser) join(room id.RoomID) {
	u.mu.Lock()
	delay := u.JoinDelay
	u.mu.Unlock()
	time.Sleep(delay)
	for attempt := 0; attempt < 20; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := u.Client.JoinRoomByID(ctx, room)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Timeline returns the timeline events of room seen so far, in order.
func (u *MatrixUser) Timeline(room id.RoomID) []*event.Event {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.timeline[room])
}

// Cursor is the number of timeline events of room seen so far: WaitEvent(…, Cursor(room), …)
// only looks at what comes after now.
func (u *MatrixUser) Cursor(room id.RoomID) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.timeline[room])
}

// JoinedRooms lists the rooms the user has joined.
func (u *MatrixUser) JoinedRooms() []id.RoomID {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []id.RoomID
	for r := range u.joined {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// WaitEvent waits for the first timeline event of room at index >= from that matches, and returns
// it with the index after it.
func (u *MatrixUser) WaitEvent(ctx context.Context, room id.RoomID, from int, match func(*event.Event) bool) (*event.Event, int, error) {
	for {
		u.mu.Lock()
		tl := u.timeline[room]
		for i := from; i < len(tl); i++ {
			if match(tl[i]) {
				u.mu.Unlock()
				return tl[i], i + 1, nil
			}
		}
		from = max(from, len(tl))
		changed, syncErr := u.changed, u.syncErr
		u.mu.Unlock()
		if syncErr != nil {
			return nil, from, fmt.Errorf("sync failed: %w", syncErr)
		}
		select {
		case <-ctx.Done():
			return nil, from, ctx.Err()
		case <-changed:
		}
	}
}

// IsMessage matches m.room.message events from sender (any sender when empty) whose body
// contains text.
func IsMessage(sender id.UserID, text string) func(*event.Event) bool {
	return func(evt *event.Event) bool {
		if evt.Type != event.EventMessage || (sender != "" && evt.Sender != sender) {
			return false
		}
		msg := evt.Content.AsMessage()
		return msg != nil && strings.Contains(msg.Body, text)
	}
}

// Body is the body of a message event ("" for others).
func Body(evt *event.Event) string {
	if evt == nil || evt.Type != event.EventMessage {
		return ""
	}
	if msg := evt.Content.AsMessage(); msg != nil {
		return msg.Body
	}
	return ""
}

// RoomMessages reads the whole history of room from the server (/messages, oldest first), which
// unlike the sync timeline has no gaps.
func (u *MatrixUser) RoomMessages(ctx context.Context, room id.RoomID) ([]*event.Event, error) {
	var out []*event.Event
	from := ""
	for range 50 {
		resp, err := u.Client.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			return nil, fmt.Errorf("failed to read messages of %s: %w", room, err)
		}
		for _, evt := range resp.Chunk {
			if evt.Type == event.EventMessage {
				_ = evt.Content.ParseRaw(evt.Type)
				out = append(out, evt)
			}
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	slices.Reverse(out)
	return out, nil
}

// OpenManagementRoom creates a DM with the bridge bot and waits for the bot's welcome, which marks
// it as the user's management room.
func (u *MatrixUser) OpenManagementRoom(ctx context.Context, bot id.UserID) (id.RoomID, error) {
	// As Element does for DMs: the invitee gets the creator's power, so that the bot can redact
	// the password the user types.
	resp, err := u.Client.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset:   "trusted_private_chat",
		IsDirect: true,
		Invite:   []id.UserID{bot},
		Name:     "XMPP bridge bot",
	})
	if err != nil {
		return "", fmt.Errorf("failed to create the room with the bot: %w", err)
	}
	if _, _, err := u.WaitEvent(ctx, resp.RoomID, 0, IsMessage(bot, "management room")); err != nil {
		return "", fmt.Errorf("no welcome from %s in %s: %w", bot, resp.RoomID, err)
	}
	return resp.RoomID, nil
}

// Command sends text to the room and returns the first message of bot after it that matches
// (when match is nil: any message of bot but a bridge state notice, which can come at any time).
func (u *MatrixUser) Command(ctx context.Context, room id.RoomID, bot id.UserID, text string, match func(string) bool) (string, error) {
	answer, _, err := u.command(ctx, room, bot, text, text, match)
	return answer, err
}

// command is Command that names the input as shown in errors (a password is not shown).
func (u *MatrixUser) command(ctx context.Context, room id.RoomID, bot id.UserID, text, shown string, match func(string) bool) (string, id.EventID, error) {
	cur := u.Cursor(room)
	sent, err := u.Client.SendText(ctx, room, text)
	if err != nil {
		return "", "", fmt.Errorf("failed to send %q: %w", shown, err)
	}
	evt, _, err := u.WaitEvent(ctx, room, cur, func(evt *event.Event) bool {
		if evt.Sender != bot || evt.Type != event.EventMessage {
			return false
		}
		if match == nil {
			return !IsStateNotice(Body(evt))
		}
		return match(Body(evt))
	})
	if err != nil {
		return "", sent.EventID, fmt.Errorf("no answer from the bot to %q: %w (bot said: %s)", shown, err, u.botSaid(room, bot, cur))
	}
	return Body(evt), sent.EventID, nil
}

// IsStateNotice matches the bot's bridge state notices ("State update for LOGIN: `STATE` …").
func IsStateNotice(body string) bool { return strings.HasPrefix(body, "State update for ") }

// StateNotice matches the notice of login's change to state (e.g. "CONNECTED").
func StateNotice(login, state string) func(*event.Event) bool {
	prefix := "State update for " + login + ": `" + state + "`"
	return func(evt *event.Event) bool { return strings.HasPrefix(Body(evt), prefix) }
}

// botSaid lists what bot said in room since cursor, for failure messages.
func (u *MatrixUser) botSaid(room id.RoomID, bot id.UserID, from int) string {
	var said []string
	for _, evt := range u.Timeline(room)[min(from, u.Cursor(room)):] {
		if evt.Sender == bot && evt.Type == event.EventMessage {
			said = append(said, fmt.Sprintf("%q", Body(evt)))
		}
	}
	if len(said) == 0 {
		return "nothing"
	}
	return strings.Join(said, ", ")
}

// LoginInput are the answers to the bridge's password login prompts.
type LoginInput struct {
	JID, Password string
	// Server is host:port of the XMPP server ("auto" for DNS).
	Server string
	// InsecureHost is the host whose self-signed certificate is accepted ("no" for none).
	InsecureHost string
}

// ErrLoginFailed is returned when the bot answers the last login step with an error.
var ErrLoginFailed = errors.New("login failed")

// LoginResult is how a login through the bot went.
type LoginResult struct {
	// Answer is the bot's last answer.
	Answer string
	// PasswordEvent is the message in which the user typed the password (empty if the flow
	// stopped earlier).
	PasswordEvent id.EventID
}

// Login runs the bot's `login` command, answering its prompts. A refused login returns the
// bot's answer and an error wrapping ErrLoginFailed.
func (u *MatrixUser) Login(ctx context.Context, room id.RoomID, bot id.UserID, in LoginInput) (LoginResult, error) {
	var res LoginResult
	prompt := func(s string) bool { return strings.HasPrefix(s, "Please enter your ") || isLoginFailure(s) }
	steps := []struct{ send, expect string }{
		{"login", "XMPP address"},
		{in.JID, "password"},
		{in.Password, "server"},
		{in.Server, "self-signed certificate host"},
	}
	for _, st := range steps {
		shown := st.send
		if st.send == in.Password {
			shown = "(the password)"
		}
		got, sent, err := u.command(ctx, room, bot, st.send, shown, prompt)
		if st.send == in.Password {
			res.PasswordEvent = sent
		}
		res.Answer = got
		if err != nil {
			return res, err
		}
		if !strings.HasPrefix(got, "Please enter your "+st.expect) {
			return res, fmt.Errorf("%w: after %q the bot said %q", ErrLoginFailed, shown, got)
		}
	}
	got, _, err := u.command(ctx, room, bot, in.InsecureHost, in.InsecureHost, func(s string) bool {
		return strings.HasPrefix(s, "Successfully logged in") || isLoginFailure(s)
	})
	res.Answer = got
	if err != nil {
		return res, err
	}
	if !strings.HasPrefix(got, "Successfully logged in") {
		return res, fmt.Errorf("%w: %s", ErrLoginFailed, got)
	}
	return res, nil
}

// WaitRedacted waits until evt in room has been redacted (its content is gone).
func (u *MatrixUser) WaitRedacted(ctx context.Context, room id.RoomID, evt id.EventID) error {
	for {
		got, err := u.Client.GetEvent(ctx, room, evt)
		if err == nil && (got.Unsigned.RedactedBecause != nil || len(got.Content.VeryRaw) <= 2) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s was not redacted: %w", evt, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func isLoginFailure(s string) bool {
	for _, p := range []string{"Failed", "Invalid", "You already have", "Login failed", "Unknown command"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// FindRoomWith waits until the user has joined a room (other than except) in which member is
// joined, and returns it.
func (u *MatrixUser) FindRoomWith(ctx context.Context, member id.UserID, except ...id.RoomID) (id.RoomID, error) {
	for {
		for _, room := range u.JoinedRooms() {
			if slices.Contains(except, room) {
				continue
			}
			resp, err := u.Client.JoinedMembers(ctx, room)
			if err != nil {
				continue
			}
			if _, ok := resp.Joined[member]; ok {
				return room, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no joined room with %s (joined: %v): %w", member, u.JoinedRooms(), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// GhostMXID is the Matrix ID bridgev2 gives the ghost of a network user ID with the default
// username template (xmpp_{{.}}).
func GhostMXID(networkUserID, domain string) id.UserID {
	return id.NewUserID("xmpp_"+id.EncodeUserLocalpart(networkUserID), domain)
}
