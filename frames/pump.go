package frames

import (
	"errors"
	"io"
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

// Copy relays src to dst one read at a time: each chunk is scanned for frame
// boundaries (s may be nil for an opaque tunnel), handed to onChunk (may be
// nil), and written whole with one Write — so several small frames batched in
// one TLS record leave in one write, and a 16 MiB frame streams through buf
// without being held. It returns the bytes relayed and, when it stops, a
// *CopyError; a clean end of src is a *CopyError wrapping io.EOF.
//
// The per-chunk path allocates nothing (BenchmarkCopy).
func Copy(dst io.Writer, src io.Reader, buf []byte, s *Scanner, onChunk func([]byte)) (int64, error) {
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			b := buf[:n]
			if s != nil {
				s.Feed(b)
			}
			if onChunk != nil {
				onChunk(b)
			}
			w, werr := dst.Write(b)
			total += int64(w)
			if werr == nil && w != n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return total, &CopyError{Err: werr}
			}
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
