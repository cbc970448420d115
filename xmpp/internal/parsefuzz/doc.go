// Package parsefuzz fuzzes every parser of the stanza packages under xmpp/
// with one target: whatever bytes a peer sends, parsing must return a value
// or an error, never panic or hang.
//
//	go test -tags goolm -fuzz FuzzParsers -fuzztime 30s ./xmpp/internal/parsefuzz/
//
// The package has no non-test code.
package parsefuzz
