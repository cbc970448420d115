package xmppclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrPrivateAddress refuses a download from a host that resolves into a
// private network: a link from a contact must not make the bridge reach
// services next to it (SSRF).
var ErrPrivateAddress = errors.New("the link points to a private network address")

// nonPublic are the special-purpose ranges (IANA registries) that
// IsGlobalUnicast lets through, and the IPv6 ranges that embed an IPv4
// address a gateway would reach for us (NAT64, 6to4, Teredo, IPv4-
// compatible): a public-looking IPv6 address must not lead to 127.0.0.1.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible IPv6
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 well-known prefix
	netip.MustParsePrefix("64:ff9b:1::/48"),  // NAT64 local use
	netip.MustParsePrefix("2001::/32"),       // Teredo
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4
}

// publicOnly reports whether ip may be reached for any host: not loopback,
// private (RFC 1918, ULA), link-local, unspecified, multicast, nor any of
// nonPublic.
func publicOnly(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// trusted reports whether host may resolve to a private address: only
// the hosts the admin lists (PrivateHosts). Neither the account's domain
// nor the host a user names at login counts: both are chosen by whoever
// logs in, and a name of theirs pointing at 169.254.169.254 would read the
// bridge's network into Matrix.
func (m *Media) trusted(host string) bool {
	return HostListed(m.PrivateHosts, host)
}

// HostListed reports whether host is in hosts (case and a final dot
// ignored).
func HostListed(hosts []string, host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, h := range hosts {
		if h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), "."); h != "" && h == host {
			return true
		}
	}
	return false
}

// mediaDialer dials for media downloads, refusing private addresses for
// hosts that are not trusted. The check runs on the resolved address of
// every connection (redirects included), so DNS cannot point a public name
// inward.
func (m *Media) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		trusted := m.trusted(host)
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return err
				}
				if !trusted && !publicOnly(ap.Addr()) {
					return fmt.Errorf("%w (%s resolves to %s)", ErrPrivateAddress, host, ap.Addr())
				}
				return nil
			}}
		return d.DialContext(ctx, network, addr)
	}
}
