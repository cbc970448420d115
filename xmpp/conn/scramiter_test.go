package conn

import (
	"errors"
	"testing"
)

func TestCheckIterations(t *testing.T) {
	for _, tc := range []struct {
		challenge string
		ok        bool
	}{
		{"r=abc,s=c2FsdA==,i=4096", true},
		{"r=abc,s=c2FsdA==,i=10000", true},
		{"r=abc,s=c2FsdA==,i=1000000", true},
		{"r=abc,s=c2FsdA==,i=4095", false},
		{"r=abc,s=c2FsdA==,i=1", false},
		{"r=abc,s=c2FsdA==,i=2147483647", false},
		{"r=abc,s=c2FsdA==,i=99999999999999999999", false},
		{"r=abc,s=c2FsdA==,i=-5", false},
		{"r=abc,s=c2FsdA==,i=", false},
		{"v=c2lnbmF0dXJl", true}, // server-final
	} {
		err := checkIterations([]byte(tc.challenge))
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrSCRAMIterations)) {
			t.Errorf("%q: %v, want ok=%v", tc.challenge, err, tc.ok)
		}
	}
	// Every SCRAM mechanism the client offers is bounded.
	for _, m := range (Config{AllowPlain: true}).mechanisms() {
		if m.Name == "PLAIN" {
			continue
		}
		if _, _, _, err := m.Next(nil, []byte("r=x,s=c2FsdA==,i=100000000"), nil); !errors.Is(err, ErrSCRAMIterations) {
			t.Errorf("%s accepts 10^8 iterations: %v", m.Name, err)
		}
	}
}
