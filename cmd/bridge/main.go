package main

import (
	_ "maunium.net/go/mautrix/bridgev2/matrix/mxmain"
	_ "mellium.im/xmpp"
	_ "filippo.io/edwards25519"
	_ "github.com/lib/pq"
	_ "go.mau.fi/libsignal/session"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "google.golang.org/protobuf/encoding/protowire"
	_ "github.com/rs/zerolog"
	_ "golang.org/x/crypto/hkdf"
)

func main() {}
