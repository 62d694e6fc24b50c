package capture

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// sinkBlock is the alignment of direct I/O: file offsets, lengths and
// memory addresses of O_DIRECT writes are multiples of it (open(2),
// "O_DIRECT"; 4096 covers every logical block size Linux uses).
const sinkBlock = 4096

// sinkSize is the buffer the capture file is written from: on the
// benchmark VM, a direct write of 4 MiB from huge pages costs 0.016 ns of
// CPU a byte, of 1 MiB from ordinary pages 0.15.
const sinkSize = 4 << 20

// fileSink buffers the capture file and writes it with direct I/O
// (O_DIRECT) where the file system allows it: the bytes go from the buffer
// to the disk, with none of the page-cache work that buffered writes cost
// the writer (on the benchmark VM, buffered writes to fresh pages cost
// 1.4 ns a byte of system time, direct writes 0.13). The capture is
// written once and never read back by wstap, so it has no use for the page
// cache. Direct writes wait for the disk, so while the writer is behind
// (pressure) the file goes on with buffered writes, which the page cache
// absorbs, and back to direct ones once it has caught up: a disk that
// stalled once must not cost the page-cache price for the rest of the file.
// Both kinds write whole blocks from a block-aligned offset (off), so the
// file can switch at any flush.
type fileSink struct {
	f         *os.File
	buf       []byte      // sinkSize bytes, aligned to sinkBlock
	n         int         // bytes in buf
	off       int64       // file offset of buf[0], a multiple of sinkBlock
	direct    bool        // the file is in direct I/O now
	canDirect bool        // the file system takes direct I/O
	pressure  func() bool // the writer is behind; nil: never
	err       error
}

// heapSinkBuffer returns sinkSize bytes of the Go heap aligned to sinkBlock.
func heapSinkBuffer() []byte {
	b := make([]byte, sinkSize+sinkBlock)
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (sinkBlock - 1))
	return b[skip : skip+sinkSize : skip+sinkSize]
}

// openSink creates path for writing, private (mode 0600), with direct I/O when the file system
// takes it, writing from buf (from newSinkBuffer).
func openSink(path string, buf []byte, pressure func() bool) (*fileSink, error) {
	s := &fileSink{buf: buf, pressure: pressure}
	if oDirect != 0 {
		f, err := OpenPrivate(path, os.O_TRUNC|oDirect)
		if err == nil {
			s.f, s.direct, s.canDirect = f, true, true
			return s, nil
		}
	}
	f, err := OpenPrivate(path, os.O_TRUNC)
	if err != nil {
		return nil, err
	}
	s.f = f
	return s, nil
}

func (s *fileSink) Write(p []byte) (int, error) {
	n := 0
	for s.err == nil && len(p) > 0 {
		k := copy(s.buf[s.n:], p)
		s.n += k
		n += k
		p = p[k:]
		if s.n == len(s.buf) {
			s.err = s.flush()
		}
	}
	return n, s.err
}

func (s *fileSink) WriteString(p string) (int, error) {
	n := 0
	for s.err == nil && len(p) > 0 {
		k := copy(s.buf[s.n:], p)
		s.n += k
		n += k
		p = p[k:]
		if s.n == len(s.buf) {
			s.err = s.flush()
		}
	}
	return n, s.err
}

// Flush writes what the buffer holds.
func (s *fileSink) Flush() error {
	if s.err == nil {
		s.err = s.flush()
	}
	return s.err
}

// flush writes the buffer's whole blocks and moves the rest, a last
// partial block, to its start. That partial block is written too, so that
// the file holds every byte: padded with zeros with direct I/O, as it is
// with buffered I/O; it is written again, longer, at the same offset by
// the next flush, and Close cuts the file to its length.
func (s *fileSink) flush() error {
	if s.n == 0 {
		return nil
	}
	s.choose()
	whole := s.n &^ (sinkBlock - 1)
	end := s.n
	if s.direct && end > whole {
		end = whole + sinkBlock
		clear(s.buf[s.n:end])
	}
	if _, err := s.f.WriteAt(s.buf[:end], s.off); err != nil {
		if s.direct && errors.Is(err, syscall.EINVAL) && s.setDirect(false) {
			s.canDirect = false // the file system refuses direct I/O after all
			return s.flush()
		}
		return err
	}
	copy(s.buf, s.buf[whole:s.n])
	s.off += int64(whole)
	s.n -= whole
	return nil
}

// choose writes with direct I/O unless the writer is behind.
func (s *fileSink) choose() {
	if !s.canDirect {
		return
	}
	if want := s.pressure == nil || !s.pressure(); want != s.direct {
		s.setDirect(want)
	}
}

// setDirect turns direct I/O on or off for the rest of the file, until the
// next switch, and reports whether it could.
func (s *fileSink) setDirect(on bool) bool {
	if setDirect(s.f, on) != nil {
		return false
	}
	s.direct = on
	return true
}

// Close flushes, cuts the padding of a last direct write and closes the file.
func (s *fileSink) Close() error {
	err := s.Flush()
	if err == nil {
		if terr := s.f.Truncate(s.off + int64(s.n)); terr != nil {
			err = terr
		}
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("closing %s: %w", s.f.Name(), err)
	}
	return nil
}
