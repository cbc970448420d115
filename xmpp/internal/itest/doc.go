// Package itest holds the integration tests of the stanza packages under
// xmpp/: they run against a real Prosody started by internal/testenv and
// only build with the integration tag:
//
//	go test -tags 'goolm integration' ./xmpp/internal/itest/
//
// The package has no non-test code.
package itest
