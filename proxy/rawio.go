package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a leg's TCP connection with syscall.RawSyscall,
// through its syscall.RawConn, for the TLS stack above it (tlsSniffer).
// Go's poller made the socket non-blocking, so each call returns at once:
// with nothing to read or no room to write, RawConn waits for the poller as
// net.Conn does. Through net.Conn each call is an entersyscall/exitsyscall
// pair, and a write the kernel spends more than 20 µs in (on loopback it
// delivers to the peer within the call) lets the runtime's monitor hand the
// goroutine's processor to another thread: a futex wake and two context
// switches per write on a busy relay. A raw call keeps the processor.
//
// Reads come from one goroutine at a time (the TLS stack's input lock),
// writes too (tlsSniffer.wmu); a read and a write may run at once, so each
// has its own state. The call functions are bound once: nothing is
// allocated per call.
type rawIO struct {
	conn *net.TCPConn
	rc   syscall.RawConn
	r, w rawCall
}

// rawCall is one direction's call: buf in, n and errno out.
type rawCall struct {
	trap  uintptr // SYS_READ or SYS_WRITE
	buf   []byte
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

// newRawIO returns c's raw I/O, or nil when c is not a TCP connection.
func newRawIO(c net.Conn) *rawIO {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	x := &rawIO{conn: tc, rc: rc}
	x.r.trap, x.w.trap = syscall.SYS_READ, syscall.SYS_WRITE
	x.r.fn, x.w.fn = x.r.call, x.w.call
	return x
}

// call makes the system call once the socket is ready; false asks RawConn
// to wait for the poller (EAGAIN).
func (c *rawCall) call(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(c.trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.buf))), uintptr(len(c.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			c.n, c.errno = int(n), 0
		default:
			c.n, c.errno = 0, e
		}
		return true
	}
}

// Read reads into p as net.Conn.Read does, with its errors.
func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.r.buf = p
	err := r.rc.Read(r.r.fn)
	r.r.buf = nil
	switch {
	case err != nil:
		return 0, r.opError("read", err)
	case r.r.errno != 0:
		return 0, r.opError("read", os.NewSyscallError("read", r.r.errno))
	case r.r.n == 0:
		return 0, io.EOF
	}
	return r.r.n, nil
}

// Write writes all of p as net.Conn.Write does, with its errors.
func (r *rawIO) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		r.w.buf = p[done:]
		err := r.rc.Write(r.w.fn)
		r.w.buf = nil
		switch {
		case err != nil:
			return done, r.opError("write", err)
		case r.w.errno != 0:
			return done, r.opError("write", os.NewSyscallError("write", r.w.errno))
		case r.w.n == 0:
			return done, io.ErrShortWrite
		}
		done += r.w.n
	}
	return done, nil
}

// opError is the error net.Conn would return: RawConn's own (closed, past
// the deadline) come as a "raw-read"/"raw-write" *net.OpError, renamed.
func (r *rawIO) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.conn.LocalAddr(), Addr: r.conn.RemoteAddr(), Err: err}
}
