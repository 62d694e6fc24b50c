//go:build unix

package load

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// RaiseOpenFileLimit raises the soft RLIMIT_NOFILE to the hard limit and
// returns the limit in force. Go (since 1.19) already does this when package
// os starts, but a parent or a library may have lowered it since; every
// session is a file, and running out would make the load client the cause of
// the drops it is there to measure.
func RaiseOpenFileLimit() (uint64, error) {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("reading the open-file limit: %w", err)
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = l.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
			return l.Cur, fmt.Errorf("raising the open-file limit from %d to %d: %w", l.Cur, l.Max, err)
		}
		l = want
	}
	return l.Cur, nil
}
