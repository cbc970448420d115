// Command testenv starts and stops the test servers outside of go test (see testenv.CLI).
// Run it through scripts/testenv.
package main

import (
	"os"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

func main() {
	os.Exit(testenv.CLI(os.Args[1:], os.Stdout, os.Stderr))
}
