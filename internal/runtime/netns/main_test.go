package netns_test

import (
	"os"
	"testing"

	"kubesvc/internal/runtime/netns/netnstest"
)

func TestMain(m *testing.M) {
	if code, child := netnstest.PrivateNamespaces(); !child {
		os.Exit(code)
	}
	os.Exit(m.Run())
}
