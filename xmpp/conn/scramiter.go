package conn

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/sasl"
)

// The SCRAM iteration count comes from the server (RFC 5802 server-first
// message, i=…). mellium computes PBKDF2 with whatever it says, so a
// hostile server could ask for billions of rounds (a CPU stall per
// connect) or for a handful (a ClientProof cheap to brute-force). Counts
// outside these bounds end the authentication before any proof is sent.
const (
	// scramMinIterations is RFC 7677's floor for SCRAM-SHA-256 (ejabberd's
	// default; Prosody uses 10000).
	scramMinIterations = 4096
	// scramMaxIterations keeps one connect under a second of CPU.
	scramMaxIterations = 1_000_000
)

// ErrSCRAMIterations: the server asked for an iteration count outside
// [scramMinIterations, scramMaxIterations].
var ErrSCRAMIterations = errors.New("conn: SCRAM iteration count out of bounds")

// boundIterations wraps a SCRAM mechanism's Next so that the server-first
// message is checked before mellium derives the key.
func boundIterations(m sasl.Mechanism) sasl.Mechanism {
	if !strings.HasPrefix(m.Name, "SCRAM-") {
		return m
	}
	next := m.Next
	m.Next = func(n *sasl.Negotiator, challenge []byte, data interface{}) (bool, []byte, interface{}, error) {
		if err := checkIterations(challenge); err != nil {
			return false, nil, nil, err
		}
		return next(n, challenge, data)
	}
	return m
}

// checkIterations checks the i= attribute of a server-first message; other
// challenges (server-final has no i=) pass.
func checkIterations(challenge []byte) error {
	for _, attr := range strings.Split(string(challenge), ",") {
		v, ok := strings.CutPrefix(attr, "i=")
		if !ok {
			continue
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < scramMinIterations || i > scramMaxIterations {
			return fmt.Errorf("%w: %q", ErrSCRAMIterations, v)
		}
	}
	return nil
}
