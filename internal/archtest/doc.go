// Package archtest holds only tests: they read the Go files of the module
// and fail when the structure docs/architecture.md describes is broken (a
// package importing upward, bridge/ reading or writing XML itself or making
// network calls of its own, a context tree started from context.Background
// outside main and tests, a file over 600 lines, a file, function, type or
// table named in docs/architecture.md that the code does not have).
package archtest // import "github.com/mxomemo/xmpp-bridge/internal/archtest"
