package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mxomemo/xmpp-bridge/e2e/internal/harness"
	"github.com/mxomemo/xmpp-bridge/omemo"
	"github.com/mxomemo/xmpp-bridge/omemoxmpp"
)

// omemoDemo is the second half of the demo: the contact gets an OMEMO 2 device (our own omemoxmpp
// client, on the contact's demo session), sends an encrypted message that the bridge decrypts into
// the portal, and decrypts the Matrix user's reply, which the bridge sends OMEMO-encrypted because
// the contact used OMEMO in the chat.
type omemoDemo struct {
	u           *harness.MatrixUser
	bot         id.UserID
	mgmt, room  id.RoomID
	ghost       id.UserID
	ghostName   string // display name <MXID>
	contact     *harness.Peer
	alice, bob  jid.JID
	stepTimeout time.Duration
}

var fingerprintAnswer = regexp.MustCompile(`OMEMO device for \S+ is (\d+), fingerprint`)

// step runs f with a context that ends after the step timeout, naming the step in its error.
func (d *omemoDemo) step(ctx context.Context, what string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d.stepTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (d *omemoDemo) run(ctx context.Context) error {
	fmt.Printf("\nOMEMO (urn:xmpp:omemo:2)\n")

	// The contact's OMEMO device: a fresh identity in memory, announced on bob's PEP service
	// (bundle, then the device list) over the demo's mellium session.
	store := omemo.NewMemoryStore()
	m := omemo.NewManager(store, d.bob.String(), omemo.Options{PreKeys: 20})
	var xc *omemoxmpp.Client
	err := d.step(ctx, "setting up bob's OMEMO device", func(ctx context.Context) error {
		if err := m.Setup(ctx); err != nil {
			return err
		}
		var err error
		xc, err = omemoxmpp.NewSession(m, store, d.contact.Session, omemoxmpp.Options{
			Label: "demo", Versions: []omemo.Version{omemo.V2},
		})
		if err != nil {
			return err
		}
		return xc.Announce(ctx)
	})
	if err != nil {
		return err
	}
	fmt.Printf("  %s announced OMEMO 2 device %d (fingerprint %s), built with our omemoxmpp client\n",
		d.bob, m.DeviceID(), m.Fingerprint())

	// The bridge's device for the login, as the bot tells it, and as bob sees it on alice's PEP.
	var bridgeDevice uint32
	err = d.step(ctx, "asking the bot for the bridge's OMEMO device", func(ctx context.Context) error {
		answer, err := d.u.Command(ctx, d.mgmt, d.bot, "omemo fingerprint", func(s string) bool {
			return fingerprintAnswer.MatchString(s)
		})
		if err != nil {
			return err
		}
		fmt.Printf("  bot: %s\n", answer)
		n, err := strconv.ParseUint(fingerprintAnswer.FindStringSubmatch(answer)[1], 10, 32)
		bridgeDevice = uint32(n)
		return err
	})
	if err != nil {
		return err
	}
	err = d.step(ctx, fmt.Sprintf("waiting for device %d in %s's OMEMO 2 device list", bridgeDevice, d.alice), func(ctx context.Context) error {
		for {
			set, err := xc.FetchDevices(ctx, d.alice)
			if err == nil && set.Speaks(bridgeDevice, omemo.V2) {
				fmt.Printf("  %s fetched %s's device list: %v (the bridge's device %d is in it)\n", d.bob, d.alice, deviceIDs(set), bridgeDevice)
				return nil
			}
			select {
			case <-ctx.Done():
				if err == nil {
					err = fmt.Errorf("have %v", deviceIDs(set))
				}
				return fmt.Errorf("%w (%v)", ctx.Err(), err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
	if err != nil {
		return err
	}

	// bob → Matrix, encrypted.
	secret := fmt.Sprintf("This one is OMEMO-encrypted (%s)", time.Now().Format("15:04:05"))
	fmt.Printf("\nXMPP → Matrix, OMEMO\n  %s encrypts for %s and sends: %q\n", d.contact.JID, d.alice, secret)
	xcur := d.contact.Cursor()
	mcur := d.u.Cursor(d.room)
	err = d.step(ctx, "sending bob's OMEMO message", func(ctx context.Context) error {
		out, err := xc.Encrypt(ctx, d.alice, secret)
		if err != nil {
			return err
		}
		got := false
		for _, a := range out.Recipients[omemo.V2] {
			got = got || (a == omemo.Address{JID: d.alice.String(), Device: bridgeDevice})
		}
		if !got {
			return fmt.Errorf("not encrypted for the bridge's device %d: recipients %v, skipped %v", bridgeDevice, out.Recipients, out.Errors)
		}
		r, err := omemoxmpp.BuildMessage(stanza.Message{To: d.alice, ID: fmt.Sprintf("demo-omemo-%d", time.Now().UnixNano()), Type: stanza.ChatMessage}, out)
		if err != nil {
			return err
		}
		fmt.Printf("  on the wire: <encrypted xmlns='%s'> with a key for %s device %d, <body/> is the fallback text\n",
			omemo.V2.Namespace(), d.alice, bridgeDevice)
		return d.contact.Session.Send(ctx, r)
	})
	if err != nil {
		return err
	}
	err = d.step(ctx, "waiting for the decrypted OMEMO message in Matrix", func(ctx context.Context) error {
		evt, _, err := d.u.WaitEvent(ctx, d.room, mcur, func(evt *event.Event) bool {
			return evt.Sender == d.ghost && evt.Type == event.EventMessage
		})
		if err != nil {
			return fmt.Errorf("the OMEMO message did not reach Matrix: %w", err)
		}
		body := harness.Body(evt)
		if body != secret {
			return fmt.Errorf("the portal got %q, want the decrypted text %q", body, secret)
		}
		fmt.Printf("  arrived decrypted in Matrix room %s from %s: %q\n", d.room, d.ghostName, body)
		var enc event.EncryptionEventContent
		if err := d.u.Client.StateEvent(ctx, d.room, event.StateEncryption, "", &enc); err == nil && enc.Algorithm != "" {
			fmt.Printf("  (the portal is Megolm-encrypted in Matrix: %s)\n", enc.Algorithm)
		} else {
			fmt.Printf("  (the portal itself is not Matrix-encrypted: the demo bridge leaves encryption.default off; " +
				"OMEMO covers the XMPP hop, and the bridge marked the chat as OMEMO-encrypted)\n")
		}
		return nil
	})
	if err != nil {
		return err
	}

	// Matrix → bob: the chat is now OMEMO-encrypted, so the reply must be too.
	reply := "Encrypted reply from Matrix"
	fmt.Printf("\nMatrix → XMPP, OMEMO\n  %s sends in %s: %q\n", d.u.UserID(), d.room, reply)
	if _, err := d.u.Client.SendText(ctx, d.room, reply); err != nil {
		return fmt.Errorf("sending the Matrix reply: %w", err)
	}
	return d.step(ctx, "waiting for the OMEMO-encrypted reply at bob", func(ctx context.Context) error {
		for {
			rm, next, err := d.contact.WaitMessage(ctx, xcur, func(rm harness.ReceivedMessage) bool {
				if rm.Carbon || rm.Type == "error" {
					return false
				}
				from, err := jid.Parse(rm.From)
				if err != nil || !from.Bare().Equal(d.alice) {
					return false
				}
				return rm.OMEMO != nil || strings.Contains(rm.Body, reply)
			})
			if err != nil {
				return fmt.Errorf("the reply did not reach XMPP: %w", err)
			}
			xcur = next
			if rm.OMEMO == nil {
				return fmt.Errorf("the reply arrived in plaintext: %q", rm.Body)
			}
			msg, err := xc.Decrypt(ctx, d.alice, &omemoxmpp.Received{Elements: []*omemo.Encrypted{rm.OMEMO}})
			if err != nil {
				return fmt.Errorf("bob could not decrypt the message from %s: %w", rm.From, err)
			}
			if msg.Empty || msg.Body == "" {
				fmt.Printf("  %s got an empty OMEMO message (heartbeat) from device %d after the key exchange\n", d.contact.JID, msg.Sender.Device)
				continue
			}
			if msg.Body != reply {
				return fmt.Errorf("bob decrypted %q, want %q", msg.Body, reply)
			}
			if msg.Sender.Device != bridgeDevice || msg.Version != omemo.V2 {
				return fmt.Errorf("the reply came from device %d over %s, want device %d over %s", msg.Sender.Device, msg.Version, bridgeDevice, omemo.V2)
			}
			if strings.Contains(rm.Body, reply) || rm.Body != omemoxmpp.FallbackBody {
				return fmt.Errorf("the stanza's plaintext <body/> is %q, want only the OMEMO fallback text", rm.Body)
			}
			fmt.Printf("  %s received from %s a stanza with <encrypted xmlns='%s'> (from device %d) and no plaintext body:\n",
				d.contact.JID, rm.From, rm.OMEMO.Version.Namespace(), msg.Sender.Device)
			fmt.Printf("    <body/> on the wire: %q\n", rm.Body)
			fmt.Printf("  %s decrypted it: %q\n\n", d.contact.JID, msg.Body)
			return nil
		}
	})
}

func deviceIDs(set omemoxmpp.DeviceSet) []uint32 {
	out := make([]uint32, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	return out
}
