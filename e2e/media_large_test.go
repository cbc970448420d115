package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

// largeFile is larger than the memory budget below, by far.
const (
	largeFile    = 40 << 20
	memoryBudget = 16 << 20
)

// TestMediaLarge: a 40 MiB file crosses each way (XMPP -> Matrix through the contact's upload
// service, Matrix -> XMPP through the account's) while the bridge's peak resident memory
// (VmHWM) grows by less than a 16 MiB budget: the bridge streams files through temporary files,
// never holding one whole in memory. The figures are logged. Prosody and ejabberd.
func TestMediaLarge(t *testing.T) {
	for _, server := range []string{"prosody", "ejabberd"} {
		t.Run(server, func(t *testing.T) {
			runMediaLarge(t, server)
		})
	}
}

func runMediaLarge(t *testing.T, server string) {
	s := newStackOn(t, server, "sqlite", testenv.ProsodyOptions{UploadHTTPS: true, UploadSizeLimit: 64 << 20}, func(c *harness.BridgeConfig) {
		c.Network = map[string]any{"max_media_size_mb": 64}
	})
	alice, alicePW := s.account(t, "lalice")
	bob, bobPW := s.account(t, "lbob")
	u := s.matrixUser(t, "mxlarge")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mgmt := s.loginUser(ctx, t, u, alice, alicePW)
	web := trustingClient(t, s.xmpp.CertFile())
	bobC := s.peer(t, bob, bobPW, "large")
	hello := uniq("hello from bob")
	if err := bobC.SendChat(ctx, alice, "", "", hello); err != nil {
		t.Fatal(err)
	}
	room := waitPortalMessage(ctx, t, s, u, mgmt, bob, hello)
	pid := s.bridge.PID()

	t.Run("XMPPToMatrix", func(t *testing.T) {
		data := randomBytes(t, largeFile)
		getURL := peerUpload(ctx, t, bobC, web, "large.bin", "application/octet-stream", data)
		before := procMemory(t, pid)
		cur := u.Cursor(room)
		raw := fmt.Sprintf(`<message xmlns="jabber:client" type="chat" to="%s" id="%s"><body>%s</body>`+
			`<x xmlns="jabber:x:oob"><url>%s</url></x></message>`, alice, uniq("f"), xmlEscape(getURL), xmlEscape(getURL))
		if err := bobC.SendRaw(ctx, raw); err != nil {
			t.Fatal(err)
		}
		evt := waitMatrixFile(ctx, t, u, room, cur, s.ghost(bob))
		after := procMemory(t, pid)
		content := evt.Content.AsMessage()
		if content.MsgType != event.MsgFile || content.Info == nil || content.Info.Size != len(data) {
			t.Fatalf("content %s %q info %+v", content.MsgType, content.Body, content.Info)
		}
		checkMemory(t, "XMPP -> Matrix", before, after)
		if got := matrixDownload(ctx, t, u, content); !bytes.Equal(got, data) {
			t.Fatalf("Matrix has %d bytes that differ from the %d shared", len(got), len(data))
		}
	})

	t.Run("MatrixToXMPP", func(t *testing.T) {
		data := randomBytes(t, largeFile)
		up, err := u.Client.UploadBytesWithName(ctx, data, "application/octet-stream", "large.bin")
		if err != nil {
			t.Fatal(err)
		}
		before := procMemory(t, pid)
		cur := bobC.Cursor()
		if _, err := u.Client.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgFile, Body: "large.bin", URL: up.ContentURI.CUString(),
			Info: &event.FileInfo{MimeType: "application/octet-stream", Size: len(data)},
		}); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
		defer wcancel()
		m, _, err := bobC.WaitMessage(wctx, cur, func(m harness.ReceivedMessage) bool {
			return !m.Carbon && strings.HasPrefix(m.From, alice.String()+"/") && m.OOB != ""
		})
		if err != nil {
			t.Fatal(err)
		}
		after := procMemory(t, pid)
		checkMemory(t, "Matrix -> XMPP", before, after)
		if got := httpGet(ctx, t, web, m.OOB); !bytes.Equal(got, data) {
			t.Fatalf("the upload service has %d bytes that differ from the %d sent", len(got), len(data))
		}
	})
}

// memory is a process's resident set now and at its peak, in bytes.
type memory struct{ rss, peak int64 }

// procMemory reads VmRSS and VmHWM of pid.
func procMemory(t *testing.T, pid int) memory {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			m.rss = kb << 10
		case "VmHWM:":
			m.peak = kb << 10
		}
	}
	if m.peak == 0 {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	return m
}

func checkMemory(t *testing.T, dir string, before, after memory) {
	t.Helper()
	grew := after.peak - before.peak
	t.Logf("%s, %d MiB file: bridge RSS %.1f -> %.1f MiB, peak %.1f -> %.1f MiB (peak grew %.1f MiB; budget %d MiB)",
		dir, largeFile>>20, mib(before.rss), mib(after.rss), mib(before.peak), mib(after.peak), mib(grew), memoryBudget>>20)
	if grew >= memoryBudget {
		t.Errorf("%s: the bridge's peak RSS grew by %.1f MiB for a %d MiB file, over the %d MiB budget", dir, mib(grew), largeFile>>20, memoryBudget>>20)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
