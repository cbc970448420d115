//go:build integration

package xmppclient

import (
	"testing"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
