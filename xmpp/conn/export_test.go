package conn

// WithMaxTLSVersion returns c capped at TLS version v, for tests that need
// TLS 1.2 (where channel binding is tls-unique rather than tls-exporter).
func WithMaxTLSVersion(c Config, v uint16) Config {
	c.tlsMaxVersion = v
	return c
}

// WithForcedChannelBinding returns c using -PLUS whenever the server offers
// it, without XEP-0440, to reach a server's refusal of the binding.
func WithForcedChannelBinding(c Config) Config {
	c.forceChannelBinding = true
	return c
}

// ForgetChannelBindingRefusals clears the hosts remembered as refusing
// channel binding.
func ForgetChannelBindingRefusals() { cbRefusedHosts.Clear() }
