package readme_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The examples start nodes and servers; each must stop all it started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
