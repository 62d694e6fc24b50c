package capture

import (
	"os"
	"syscall"
	"unsafe"

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

// hugePage is the size of a transparent huge page on amd64 and arm64.
const hugePage = 2 << 20

// newSinkBuffer returns sinkSize bytes for the sink and the function that
// frees them: anonymous memory on huge pages where the kernel gives them
// (madvise(2), MADV_HUGEPAGE), so that a direct write pins two pages
// instead of a thousand; the Go heap otherwise.
func newSinkBuffer() ([]byte, func()) {
	m, err := unix.Mmap(-1, 0, sinkSize+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return heapSinkBuffer(), func() {}
	}
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(m))) & (hugePage - 1))
	b := m[skip : skip+sinkSize : skip+sinkSize]
	unix.Madvise(b, unix.MADV_HUGEPAGE) // a hint: ordinary pages work too
	return b, func() { unix.Munmap(m) }
}
