package capture

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// sinkBlock is the alignment of direct I/O: file offsets, lengths and
// memory addresses of O_DIRECT writes are multiples of it (open(2),
// "O_DIRECT"; 4096 covers every logical block size Linux uses).
const sinkBlock = 4096

// sinkSize is the size of an output buffer: on the benchmark VM, a direct
// write of 4 MiB from huge pages costs 0.016 ns of CPU a byte, of 1 MiB
// from ordinary pages 0.15.
const sinkSize = 4 << 20

// errNoRoom: every output buffer is full and waits for the disk; what was
// to be written is dropped and counted (docs/records.md, rule 6).
var errNoRoom = errors.New("pcap output buffers full")

// outBuf is one output buffer: sinkSize bytes aligned to sinkBlock, which
// hold n bytes of capture file number file from its offset off (a
// multiple of sinkBlock).
type outBuf struct {
	b    []byte
	n    int
	off  int64
	file int
	last bool // the file ends with this buffer
	free func()
}

// spool is the relay goroutines' side of the output buffers: packets are
// built straight into cur (under Pcap.mu), full buffers go in file order
// to the I/O goroutine (full) and come back written (free). At most max
// buffers exist; when none is free the caller drops what it was writing.
type spool struct {
	cur   *outBuf
	spare *outBuf // a free buffer set aside by reserve for cur to go on in
	full  chan *outBuf
	free  chan *outBuf
	all   []*outBuf
	max   int
	dirty bool // cur holds bytes the I/O goroutine has not seen
	wait  bool // take waits for a free buffer (Close) instead of failing
}

// newSpool returns a spool of at most n (at least 2) buffers, the first
// one current for file 1.
func newSpool(n int) *spool {
	s := &spool{max: max(n, 2)}
	s.full = make(chan *outBuf, s.max)
	s.free = make(chan *outBuf, s.max)
	s.cur = s.take()
	s.cur.file = 1
	return s
}

// take returns a free buffer, making one while fewer than max exist; nil
// when none is free.
func (s *spool) take() *outBuf {
	select {
	case ob := <-s.free:
		return ob
	default:
	}
	if len(s.all) < s.max {
		b, free := newSinkBuffer()
		ob := &outBuf{b: b, free: free}
		s.all = append(s.all, ob)
		return ob
	}
	if s.wait {
		return <-s.free
	}
	return nil
}

// reserve reports whether n bytes (at most sinkSize) can be written now.
func (s *spool) reserve(n int) bool {
	if len(s.cur.b)-s.cur.n >= n || s.spare != nil {
		return true
	}
	s.spare = s.take()
	return s.spare != nil
}

// room returns cur's next n bytes when they are contiguous, for the caller
// to fill and then commit; nil otherwise.
func (s *spool) room(n int) []byte {
	if len(s.cur.b)-s.cur.n < n {
		return nil
	}
	return s.cur.b[s.cur.n : s.cur.n+n]
}

// commit adds the n bytes filled in room's slice.
func (s *spool) commit(n int) {
	s.cur.n += n
	s.dirty = true
	if s.cur.n == len(s.cur.b) {
		s.advance() // or, with no buffer free, at the next write
	}
}

// Write copies p into the buffers, handing each one over once it is full.
// It fails with errNoRoom, having written part of p, when no buffer is free.
func (s *spool) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if s.cur.n == len(s.cur.b) && !s.advance() {
			return n, errNoRoom
		}
		k := copy(s.cur.b[s.cur.n:], p)
		n += k
		p = p[k:]
		s.commit(k)
	}
	return n, nil
}

// next returns the spare buffer, or a free one, reset; nil when none is free.
func (s *spool) next() *outBuf {
	ob := s.spare
	if ob == nil {
		ob = s.take()
	}
	s.spare = nil
	if ob != nil {
		ob.n, ob.off, ob.file, ob.last = 0, 0, s.cur.file, false
	}
	return ob
}

// advance hands the full current buffer over and goes on in the next one.
func (s *spool) advance() bool {
	ob := s.next()
	if ob == nil {
		return false
	}
	ob.off = s.cur.off + int64(s.cur.n)
	s.full <- s.cur // never blocks: it holds every buffer
	s.cur = ob
	return true
}

// size is the length of the current file so far.
func (s *spool) size() int64 { return s.cur.off + int64(s.cur.n) }

// startFile ends the current file and starts file number file in a fresh
// buffer. It fails when no buffer is free.
func (s *spool) startFile(file int) bool {
	ob := s.next()
	if ob == nil {
		return false
	}
	ob.file = file
	s.cur.last = true
	s.full <- s.cur
	s.cur = ob
	s.dirty = true
	return true
}

// flush hands the current buffer over for writing when it holds bytes the
// I/O goroutine has not seen, and goes on in a free buffer from cur's last
// partial block, which the next write of the file writes again, longer.
// It leaves cur as it is when no buffer is free.
func (s *spool) flush() {
	if !s.dirty || s.cur.n == 0 {
		return
	}
	c, ob := s.cur, s.next()
	if ob == nil {
		return
	}
	whole := c.n &^ (sinkBlock - 1)
	ob.n = copy(ob.b, c.b[whole:c.n])
	ob.off = c.off + int64(whole)
	s.full <- c
	s.cur = ob
	s.dirty = false
}

// close ends the last file and tells the I/O goroutine that no buffer follows.
func (s *spool) close() {
	s.cur.last = true
	s.full <- s.cur
	s.cur = nil
	close(s.full)
}

// release frees every buffer, once the I/O goroutine has stopped.
func (s *spool) release() {
	for _, ob := range s.all {
		ob.free()
	}
	s.all = nil
}

// fileSink writes output buffers to one capture file with direct I/O
// (O_DIRECT) where the file system allows it: the bytes go from the buffer
// to the disk, with none of the page-cache work that buffered writes cost
// (on the benchmark VM, buffered writes to fresh pages cost 1.4 ns a byte
// of system time, direct writes of 4 MiB from huge pages 0.016: sinkSize). The capture is written once and
// never read back by wstap, so it has no use for the page cache. Direct
// writes wait for the disk, so while the I/O goroutine is behind
// (pressure) the file goes on with buffered writes, which the page cache
// absorbs, and back to direct ones once it has caught up: a disk that
// stalled once must not cost the page-cache price for the rest of the file.
// Both kinds write whole blocks from a block-aligned offset, so the file
// can switch at any buffer.
type fileSink struct {
	f         *os.File
	index     int         // the file's number (pcapName)
	direct    bool        // the file is in direct I/O now
	canDirect bool        // the file system takes direct I/O
	pressure  func() bool // the I/O goroutine is behind; nil: never
}

// heapSinkBuffer returns sinkSize bytes of the Go heap aligned to sinkBlock.
func heapSinkBuffer() []byte {
	b := make([]byte, sinkSize+sinkBlock)
	skip := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (sinkBlock - 1))
	return b[skip : skip+sinkSize : skip+sinkSize]
}

// openSink creates capture file number index in dir, private (mode 0600),
// with direct I/O when the file system takes it.
func openSink(dir string, index int, pressure func() bool) (*fileSink, error) {
	path := filepath.Join(dir, pcapName(index))
	s := &fileSink{index: index, pressure: pressure}
	if oDirect != 0 {
		f, err := OpenPrivate(path, os.O_TRUNC|oDirect)
		if err == nil {
			s.f, s.direct, s.canDirect = f, true, true
			return s, nil
		}
	}
	f, err := OpenPrivate(path, os.O_TRUNC)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", path, err)
	}
	s.f = f
	return s, nil
}

// write writes ob at its offset: its whole blocks, and a last partial
// block too, so that the file holds every byte — padded with zeros with
// direct I/O, as it is with buffered I/O. The next buffer of the file
// starts with that block and writes it again, longer; finish cuts the
// file to its length.
func (s *fileSink) write(ob *outBuf) error {
	if ob.n == 0 {
		return nil
	}
	s.choose()
	end := ob.n
	if s.direct && end&(sinkBlock-1) != 0 {
		end = (end | (sinkBlock - 1)) + 1
		clear(ob.b[ob.n:end])
	}
	if _, err := s.f.WriteAt(ob.b[:end], ob.off); err != nil {
		if s.direct && errors.Is(err, syscall.EINVAL) && s.setDirect(false) {
			s.canDirect = false // the file system refuses direct I/O after all
			return s.write(ob)
		}
		return fmt.Errorf("writing %s: %w", s.f.Name(), err)
	}
	return nil
}

// choose writes with direct I/O unless the I/O goroutine is behind.
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

// finish cuts the padding of a last direct write off a file of length
// bytes and closes it.
func (s *fileSink) finish(length int64) error {
	err := s.f.Truncate(length)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("closing %s: %w", s.f.Name(), err)
	}
	return nil
}

// sinkWriter is the I/O goroutine's state: the file being written.
type sinkWriter struct {
	dir      string
	sink     *fileSink // nil between files
	pressure func() bool
	err      error // the first failure; later buffers are not written
}

// put writes ob to its file, creating the file at its first buffer and
// closing it at its last.
func (sw *sinkWriter) put(ob *outBuf) {
	if sw.err != nil {
		return
	}
	if sw.sink == nil || sw.sink.index != ob.file {
		if sw.sink, sw.err = openSink(sw.dir, ob.file, sw.pressure); sw.err != nil {
			return
		}
	}
	sw.err = sw.sink.write(ob)
	if ob.last && sw.err == nil {
		sw.err = sw.sink.finish(ob.off + int64(ob.n))
		sw.sink = nil
	}
}

// abandon closes a file left open after a failure.
func (sw *sinkWriter) abandon() {
	if sw.sink != nil {
		sw.sink.f.Close()
		sw.sink = nil
	}
}
