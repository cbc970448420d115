package omemo_test

import (
	"context"
	"fmt"

	"github.com/mxomemo/xmpp-bridge/omemo"
)

// Two devices talk OMEMO 2: alice starts a session from bob's bundle, bob
// answers the key exchange with an empty message as Decrypt asks.
func Example() {
	ctx := context.Background()
	alice := omemo.NewManager(omemo.NewMemoryStore(), "alice@example.org", omemo.Options{})
	bob := omemo.NewManager(omemo.NewMemoryStore(), "bob@example.org", omemo.Options{})
	for _, m := range []*omemo.Manager{alice, bob} {
		if err := m.Setup(ctx); err != nil {
			panic(err)
		}
	}
	// Bob's bundle as alice fetches it from PEP.
	b, _ := bob.Bundle(ctx, omemo.V2)
	x, _ := b.Marshal()
	bundle, _ := omemo.ParseBundle(x)

	env, _ := (&omemo.Envelope{Content: []byte("<body xmlns='jabber:client'>Hi Bob</body>"), From: "alice@example.org"}).Marshal(nil)
	bobAddr := omemo.Address{JID: "bob@example.org", Device: bob.DeviceID()}
	enc, _, err := alice.Encrypt(ctx, omemo.V2, env, []omemo.Recipient{{Address: bobAddr, Bundle: bundle}})
	if err != nil {
		panic(err)
	}
	wire, _ := enc.Marshal()

	in, _ := omemo.ParseEncrypted(wire)
	d, err := bob.Decrypt(ctx, in, "alice@example.org")
	if err != nil {
		panic(err)
	}
	e, err := omemo.ParseEnvelope(d.Plaintext, "alice@example.org")
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\nnew session %v, republish bundle %v, send heartbeat %v, trusted %v\n",
		e.Content, d.NewSession, d.PreKeyConsumed, d.SendHeartbeat, d.Trusted)

	hb, _, _ := bob.EncryptEmpty(ctx, omemo.V2, []omemo.Recipient{{Address: d.Sender}})
	d2, err := alice.Decrypt(ctx, hb, "bob@example.org")
	fmt.Println("heartbeat plaintext is nil:", d2.Plaintext == nil, err)
	// Output:
	// <body xmlns='jabber:client'>Hi Bob</body>
	// new session true, republish bundle true, send heartbeat true, trusted true
	// heartbeat plaintext is nil: true <nil>
}
