package conn

// WithMaxTLSVersion returns c capped at TLS version v, for tests that need
// TLS 1.2 (where channel binding is tls-unique rather than tls-exporter).
func WithMaxTLSVersion(c Config, v uint16) Config {
	c.tlsMaxVersion = v
	return c
}
