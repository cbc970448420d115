// Package archtest holds only a test: it reads the import lines of every Go
// file in the module and fails when the structure docs/architecture.md
// describes is broken (a package importing upward, bridge/ reading or
// writing XML itself, a file over 600 lines).
package archtest // import "github.com/mxomemo/xmpp-bridge/internal/archtest"
