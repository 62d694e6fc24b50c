package capture

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// oDirect opens a file for direct I/O (open(2)).
const oDirect = syscall.O_DIRECT

// setDirect turns direct I/O on or off for an open file (fcntl(2), F_SETFL).
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = rc.Control(func(fd uintptr) {
		var fl int
		if fl, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0); ferr != nil {
			return
		}
		if on {
			fl |= unix.O_DIRECT
		} else {
			fl &^= unix.O_DIRECT
		}
		_, ferr = unix.FcntlInt(fd, unix.F_SETFL, fl)
	})
	if err != nil {
		return err
	}
	return ferr
}
