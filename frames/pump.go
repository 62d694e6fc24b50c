package frames

import (
	"errors"
	"io"
	"sync"
)

// CopyError says on which side a Copy failed.
type CopyError struct {
	// Read is true when reading the source failed (the source side ended),
	// false when writing the destination failed.
	Read bool
	Err  error
}

func (e *CopyError) Error() string {
	if e.Read {
		return "reading: " + e.Err.Error()
	}
	return "writing: " + e.Err.Error()
}

func (e *CopyError) Unwrap() error { return e.Err }

// Buffers lends Copy its read buffers: Small is held for the life of the
// connection; while reads fill it, Copy borrows a large buffer from Pool (a
// pool of *[]byte) and gives it back after two reads in a row that would have
// fit Small. An idle session so holds only Small, a busy one reads a large
// buffer at a time (wstap's: 64 KiB).
type Buffers struct {
	Small []byte
	Pool  *sync.Pool
	// Done, when set, is handed each chunk once Copy has written it (or
	// failed to); b is reused by the next read, so Done keeps none of it.
	Done func(b []byte)
}

// Copy relays src to dst one read at a time: each chunk is handed to onChunk
// (may be nil), scanned for frame boundaries (s may be nil for an opaque
// tunnel) and written whole with one Write — so several small frames batched in
// one TLS record leave in one write, and a 16 MiB frame streams through buf
// without being held. It returns the bytes relayed and, when it stops, a
// *CopyError; a clean end of src is a *CopyError wrapping io.EOF.
//
// The per-chunk path allocates nothing (BenchmarkCopy).
func Copy(dst io.Writer, src io.Reader, bufs *Buffers, s *Scanner, onChunk func([]byte)) (int64, error) {
	var total int64
	var big *[]byte
	shorts := 0 // short reads in a row into big
	defer func() {
		if big != nil {
			bufs.Pool.Put(big)
		}
	}()
	for {
		buf := bufs.Small
		if big != nil {
			buf = *big
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			b := buf[:n]
			if onChunk != nil {
				onChunk(b)
			}
			if s != nil {
				s.Feed(b)
			}
			w, werr := dst.Write(b)
			total += int64(w)
			if werr == nil && w != n {
				werr = io.ErrShortWrite
			}
			if bufs.Done != nil {
				bufs.Done(b)
			}
			if werr != nil {
				return total, &CopyError{Err: werr}
			}
		}
		// Only once the chunk is written may the large buffer go back to
		// the pool: another session would read into it.
		switch {
		case n == len(bufs.Small) && big == nil && bufs.Pool != nil:
			big = bufs.Pool.Get().(*[]byte)
		case big != nil && n < len(bufs.Small):
			// A TLS reader returns one record (at most 16 KiB) per read, so a
			// read shorter than the large buffer is no sign of an idle
			// stream; two in a row shorter than the small buffer are. One is
			// not: a 16 KiB message often comes as a full record and a short
			// one (16,384 bytes, then 4), and giving big back after the 4
			// would split the next record at len(Small), one more write.
			if shorts++; shorts == 2 {
				bufs.Pool.Put(big)
				big, shorts = nil, 0
			}
		case n >= len(bufs.Small):
			shorts = 0
		}
		if rerr != nil {
			return total, &CopyError{Read: true, Err: rerr}
		}
	}
}

// IsEOF reports whether err is a clean end of the source (a FIN).
func IsEOF(err error) bool {
	var ce *CopyError
	return errors.As(err, &ce) && ce.Read && errors.Is(ce.Err, io.EOF)
}
