package pgstmt_test

import (
	"testing"

	"github.com/mxomemo/xmpp-bridge/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }
