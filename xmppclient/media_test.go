package xmppclient

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/mxomemo/xmpp-bridge/xmpp/aesgcm"
)

func TestPublicOnly(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		public bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1:248:1893:25c8:1946", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"::", false},
		{"fd00::1", false},
		{"fe80::1", false},
		{"224.0.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"64:ff9b::7f00:1", false},                      // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false},                   // NAT64 of 169.254.169.254
		{"64:ff9b:1::a00:1", false},                     // local-use NAT64
		{"2002:7f00:1::1", false},                       // 6to4 of 127.0.0.1
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false}, // Teredo
		{"::127.0.0.1", false},                          // IPv4-compatible
		{"::a9fe:a9fe", false},                          // IPv4-compatible 169.254.169.254
		{"198.18.0.1", false},
		{"198.19.255.254", false},
		{"192.0.0.8", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"0.1.2.3", false},
		{"2a00:1450:4001:80b::200e", true},
		{"198.20.0.1", true},
	} {
		if got := publicOnly(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("publicOnly(%s) = %v, want %v", tc.ip, got, tc.public)
		}
	}
}

// TestEncryptToTemp: a file for an encrypted chat is encrypted through a
// temporary file into exactly what aesgcm.Seal gives.
func TestEncryptToTemp(t *testing.T) {
	plain := make([]byte, 1<<20+3)
	_, _ = rand.Read(plain)
	tmp, key, err := EncryptToTemp(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }()
	got, err := io.ReadAll(tmp)
	if err != nil {
		t.Fatal(err)
	}
	back, err := aesgcm.Open(key, got)
	if err != nil || !bytes.Equal(back, plain) {
		t.Fatalf("round trip: %v", err)
	}
}
