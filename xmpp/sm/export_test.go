package sm

// SetStreamID replaces the id of the stream to resume, so that a test can
// make the server refuse the resumption.
func (m *Manager) SetStreamID(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id = id
}

// SetQuickAck turns the quick ACK of the server's <a/> on or off (for
// BenchmarkStanzaAfterAck's comparison) and returns the previous setting.
func SetQuickAck(on bool) bool { return quickAckOn.Swap(on) }
