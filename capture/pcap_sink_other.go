//go:build !linux

package capture

import (
	"errors"
	"os"
)

// oDirect is 0: direct I/O is used on Linux only.
const oDirect = 0

func setDirect(*os.File, bool) error { return errors.New("direct I/O is used on Linux only") }

// newSinkBuffer returns sinkSize bytes for the sink and the function that frees them.
func newSinkBuffer() ([]byte, func()) { return heapSinkBuffer(), func() {} }
