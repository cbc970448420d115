package testenv

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Script returns the absolute path of a file under scripts/ of the repository, e.g.
// Script(t, "peers/libervia-peer.sh").
func Script(t TB, rel string) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p := filepath.Join(root, "scripts", rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return p
}

// shortTempDir is a temp dir with a short path (UNIX socket paths are limited to ~107 bytes, and
// t.TempDir carries the test name), removed when t ends.
func shortTempDir(t TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// MatrixPeer is an independent Matrix E2EE client (matrix-nio + python3-olm, scripts/peers/nio_client.py
// in serve mode): one device that reads and writes rooms as a user's client would, Megolm included.
type MatrixPeer struct {
	UserID string
	mu     sync.Mutex
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
	stderr *os.File
}

// MatrixMessage is a message event as the peer sees it.
type MatrixMessage struct {
	EventID       string `json:"event_id"`
	Sender        string `json:"sender"`
	Type          string `json:"type"` // nio class: RoomMessageText, MegolmEvent (undecryptable), …
	Body          string `json:"body"`
	MsgType       string `json:"msgtype"`
	FormattedBody string `json:"formatted_body"`
	Encrypted     bool   `json:"encrypted"`
	Decrypted     bool   `json:"decrypted"`
	// Verified: decrypted with a room key from a device the peer marked verified
	// (trust-cross-signed).
	Verified bool `json:"verified"`
	// KeyDeviceVerified: the room key came from a device the peer marked verified (of
	// KeyDeviceUser): for bridged messages, the bot's device.
	KeyDeviceVerified bool   `json:"key_device_verified"`
	KeyDeviceUser     string `json:"key_device_user"`
	TS                int64  `json:"ts"`
}

// StartMatrixPeer logs userID in on d with a new device and keeps the client running until t ends.
func StartMatrixPeer(t TB, d *Dendrite, userID, password string) *MatrixPeer {
	t.Helper()
	store := t.TempDir()
	errf, err := os.Create(filepath.Join(store, "stderr.log"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cmd := exec.Command("/usr/bin/python3", Script(t, "peers/nio_client.py"), "--hs", d.URL(), "--user", userID,
		"--password", password, "--store", filepath.Join(store, "nio"), "serve")
	cmd.Stderr = errf
	in, _ := cmd.StdinPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: failed to start nio_client.py: %v", err)
	}
	m := &MatrixPeer{UserID: userID, cmd: cmd, in: in, out: bufio.NewScanner(outPipe), stderr: errf}
	m.out.Buffer(make([]byte, 1<<20), 16<<20)
	t.Cleanup(func() {
		_ = in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("testenv: --- nio_client.py %s stderr ---\n%s", userID, tail(errf.Name(), logTail))
		}
		errf.Close()
	})
	if res := m.Do(t, map[string]any{"cmd": "login"}); res["user_id"] != userID {
		t.Fatalf("testenv: matrix peer login: %v", res)
	}
	return m
}

// Do sends one command to nio_client.py (see its doc) and returns the decoded answer; an answer
// with "error" fails the test.
func (m *MatrixPeer) Do(t TB, req map[string]any) map[string]any {
	t.Helper()
	res, err := m.do(req)
	if err != nil {
		t.Fatalf("testenv: matrix peer %s: %v\n--- stderr ---\n%s", m.UserID, err, tail(m.stderr.Name(), logTail))
	}
	return res
}

func (m *MatrixPeer) do(req map[string]any) (map[string]any, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := m.in.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("failed to write %s: %w", b, err)
	}
	if !m.out.Scan() {
		return nil, fmt.Errorf("nio_client.py exited during %s (%v)", b, m.out.Err())
	}
	var res map[string]any
	if err := json.Unmarshal(m.out.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("bad answer to %s: %q", b, m.out.Bytes())
	}
	if e, ok := res["error"]; ok {
		return res, fmt.Errorf("%s: %v", b, e)
	}
	return res, nil
}

// Invites returns the rooms the peer is invited to.
func (m *MatrixPeer) Invites(t TB) []string {
	t.Helper()
	return stringList(m.Do(t, map[string]any{"cmd": "invites"})["rooms"])
}

// WaitInvite waits until the peer is invited to some room and returns the first such room.
func (m *MatrixPeer) WaitInvite(t TB, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if rooms := m.Invites(t); len(rooms) > 0 {
			return rooms[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: %s got no invite within %s", m.UserID, timeout)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// CreateRoom creates a room (Megolm-encrypted unless plain) inviting the given users.
func (m *MatrixPeer) CreateRoom(t TB, plain bool, invite ...string) string {
	t.Helper()
	return fmt.Sprint(m.Do(t, map[string]any{"cmd": "create-room", "plain": plain, "invite": invite})["room_id"])
}

// Join joins a room by ID or alias.
func (m *MatrixPeer) Join(t TB, room string) {
	t.Helper()
	m.Do(t, map[string]any{"cmd": "join", "room": room})
}

// Send sends a text message (Megolm in encrypted rooms, to all devices unverified or not) and
// returns the event ID.
func (m *MatrixPeer) Send(t TB, room, text string) string {
	t.Helper()
	return fmt.Sprint(m.Do(t, map[string]any{"cmd": "send", "room": room, "text": text})["event_id"])
}

// SendFile uploads data (as an encrypted attachment in an encrypted room) and sends it as a
// msgtype message named name; it returns the event ID.
func (m *MatrixPeer) SendFile(t TB, room, name, mimeType, msgtype string, data []byte) string {
	t.Helper()
	return fmt.Sprint(m.Do(t, map[string]any{"cmd": "send-file", "room": room, "name": name, "mimetype": mimeType,
		"msgtype": msgtype, "data": base64.StdEncoding.EncodeToString(data)})["event_id"])
}

// MatrixFile is a file message as matrix-nio downloaded (and decrypted) it.
type MatrixFile struct {
	Data []byte
	// EncryptedFile is set when the event carried an encrypted attachment (a "file", not a "url").
	EncryptedFile bool
	Body          string
	MsgType       string
	MimeType      string
}

// DownloadFile downloads the file of a message event in room.
func (m *MatrixPeer) DownloadFile(t TB, room, eventID string) MatrixFile {
	t.Helper()
	res := m.Do(t, map[string]any{"cmd": "download-file", "room": room, "event_id": eventID})
	data, err := base64.StdEncoding.DecodeString(fmt.Sprint(res["data"]))
	if err != nil {
		t.Fatalf("testenv: bad file data: %v", err)
	}
	f := MatrixFile{Data: data, EncryptedFile: res["encrypted_file"] == true}
	f.Body, _ = res["body"].(string)
	f.MsgType, _ = res["msgtype"].(string)
	f.MimeType, _ = res["mimetype"].(string)
	return f
}

// Messages returns the room's latest messages, oldest first, and whether the room is encrypted.
func (m *MatrixPeer) Messages(t TB, room string) ([]MatrixMessage, bool) {
	t.Helper()
	res := m.Do(t, map[string]any{"cmd": "read", "room": room, "limit": 100})
	return decodeMessages(t, res), res["encrypted"] == true
}

// WaitMessage waits until a message with this body is in the room and returns it.
func (m *MatrixPeer) WaitMessage(t TB, room, body string, timeout time.Duration) MatrixMessage {
	t.Helper()
	res, err := m.do(map[string]any{"cmd": "read", "room": room, "expect": body, "wait": timeout.Seconds(), "limit": 100})
	msgs := decodeMessages(t, res)
	for _, msg := range msgs {
		if msg.Body == body {
			return msg
		}
	}
	t.Fatalf("testenv: %s: no message %q in %s within %s (%v); saw: %+v", m.UserID, body, room, timeout, err, msgs)
	return MatrixMessage{}
}

func decodeMessages(t TB, res map[string]any) []MatrixMessage {
	t.Helper()
	b, _ := json.Marshal(res["messages"])
	var msgs []MatrixMessage
	if err := json.Unmarshal(b, &msgs); err != nil {
		t.Fatalf("testenv: bad messages %s: %v", b, err)
	}
	return msgs
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, s := range l {
		out = append(out, fmt.Sprint(s))
	}
	return out
}

// peerScript runs one of the shell peer scripts with env and returns its output, failing t on a
// non-zero exit.
func peerScript(t TB, env []string, script string, args ...string) string {
	t.Helper()
	out, err := runPeerScript(env, script, args...)
	if err != nil {
		t.Fatalf("testenv: %s %s: %v\n%s", filepath.Base(script), strings.Join(args, " "), err, out)
	}
	return out
}

func runPeerScript(env []string, script string, args ...string) (string, error) {
	cmd := exec.Command(script, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// LiberviaPeer is a Libervia 0.9 backend (OMEMO 0.3 and 2 through python-omemo) driven by
// scripts/peers/libervia-peer.sh, with one profile per XMPP account.
type LiberviaPeer struct {
	script string
	env    []string
}

// LiberviaMessage is one history entry of a Libervia profile.
type LiberviaMessage struct {
	From      string  `json:"from"`
	To        string  `json:"to"`
	Body      string  `json:"body"`
	Timestamp float64 `json:"timestamp"`
	Type      string  `json:"type"`
	Encrypted bool    `json:"encrypted"`
}

// XMPPServer is the c2s address of a test XMPP server (Prosody or ejabberd), for the peers.
type XMPPServer interface {
	Host() string
	Port() int
}

var (
	_ XMPPServer = (*Prosody)(nil)
	_ XMPPServer = (*Ejabberd)(nil)
)

// StartLibervia starts a backend for p's accounts; it is stopped and removed when t ends.
func StartLibervia(t TB, p XMPPServer) *LiberviaPeer {
	t.Helper()
	dir := shortTempDir(t, "lv-")
	l := &LiberviaPeer{script: Script(t, "peers/libervia-peer.sh"), env: []string{
		"LIBERVIA_DIR=" + dir, "XMPP_HOST=" + p.Host(), "XMPP_PORT=" + strconv.Itoa(p.Port()),
	}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: --- libervia backend log ---\n%s", tail(filepath.Join(dir, "backend.log"), logTail))
		}
		_, _ = runPeerScript(l.env, l.script, "stop")
	})
	l.Run(t, "start")
	return l
}

// Run runs a libervia-peer.sh command (see the script) and returns its output.
func (l *LiberviaPeer) Run(t TB, args ...string) string {
	t.Helper()
	return peerScript(t, l.env, l.script, args...)
}

// AddProfile creates a profile named after the JID's localpart for an existing account and connects it.
func (l *LiberviaPeer) AddProfile(t TB, jid, password string) (profile string) {
	t.Helper()
	profile, _, _ = strings.Cut(jid, "@")
	l.Run(t, "profile", profile, jid, password)
	l.Run(t, "connect", profile)
	return profile
}

// History returns profile's latest messages with peerJID, oldest first.
func (l *LiberviaPeer) History(t TB, profile, ownJID, peerJID string) []LiberviaMessage {
	t.Helper()
	var msgs []LiberviaMessage
	for _, line := range strings.Split(l.Run(t, "history", profile, ownJID, peerJID, "50"), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m LiberviaMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("testenv: bad libervia history line %q: %v", line, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// ProfanityPeer runs Profanity users (legacy OMEMO) in tmux through scripts/peers/profanity-peer.sh.
type ProfanityPeer struct {
	script string
	env    []string
}

// StartProfanity prepares Profanity peers on p; every user is stopped when t ends.
func StartProfanity(t TB, p *Prosody) *ProfanityPeer {
	t.Helper()
	dir := shortTempDir(t, "prof-")
	pp := &ProfanityPeer{script: Script(t, "peers/profanity-peer.sh"), env: []string{
		"PROFANITY_DIR=" + dir, "XMPP_HOST=" + p.Host(), "XMPP_PORT=" + strconv.Itoa(p.Port()),
		"XMPP_DOMAIN=" + p.Domain(), "PROFANITY_TMUX=mxomemo-prof-" + filepath.Base(dir),
	}}
	t.Cleanup(func() { _, _ = runPeerScript(pp.env, pp.script, "down-all") })
	return pp
}

// Run runs a profanity-peer.sh command (see the script) and returns its output.
func (pp *ProfanityPeer) Run(t TB, args ...string) string {
	t.Helper()
	return peerScript(t, pp.env, pp.script, args...)
}
