package bridge

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

// errPrivateAddress refuses a download from a host that resolves into a
// private network: a link from a contact must not make the bridge reach
// services next to it (SSRF).
var errPrivateAddress = errors.New("the link points to a private network address")

// publicOnly reports whether ip may be reached for any host: not loopback,
// private (RFC 1918, ULA), link-local, shared (CGNAT), unspecified or
// multicast.
func publicOnly(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && ip.IsGlobalUnicast() && !ip.IsPrivate() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip)
}

// trustedMediaHost reports whether host may resolve to a private address:
// the account's own server and its subdomains (an upload service on the
// user's LAN) and the hosts the login or the config exempt from certificate
// checks.
func (c *Client) trustedMediaHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	domain := strings.ToLower(c.account.Domainpart())
	if domain != "" && (host == domain || strings.HasSuffix(host, "."+domain)) {
		return true
	}
	return c.insecureHost(host)
}

// mediaDialer dials for media downloads, refusing private addresses for
// hosts that are not trusted. The check runs on the resolved address of
// every connection (redirects included), so DNS cannot point a public name
// inward.
func (c *Client) mediaDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		trusted := c.trustedMediaHost(host)
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
			Control: func(_, address string, _ syscall.RawConn) error {
				ap, err := netip.ParseAddrPort(address)
				if err != nil {
					return err
				}
				if !trusted && !publicOnly(ap.Addr()) {
					return fmt.Errorf("%w (%s resolves to %s)", errPrivateAddress, host, ap.Addr())
				}
				return nil
			}}
		return d.DialContext(ctx, network, addr)
	}
}
