package capture

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// TestFileSinkKeepsEveryByte: the file holds exactly what was written, in
// order, across partial-block flushes (rewritten in place with direct I/O),
// whole buffers and a switch to buffered writes half-way.
func TestFileSinkKeepsEveryByte(t *testing.T) {
	for _, switchAt := range []int{-1, 3} {
		buf, free := newSinkBuffer()
		path := filepath.Join(t.TempDir(), "sink")
		writes := 0
		s, err := openSink(path, buf, func() bool { return switchAt >= 0 && writes >= switchAt })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("direct I/O: %v", s.direct)
		rnd := rand.New(rand.NewSource(1))
		var want bytes.Buffer
		for i := range 40 {
			p := make([]byte, rnd.Intn(3*sinkSize/4)+1)
			rnd.Read(p)
			want.Write(p)
			if i%2 == 0 {
				s.WriteString(string(p))
			} else {
				s.Write(p)
			}
			if i%3 == 0 {
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			writes++
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		free()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("switch at %d: file of %d bytes differs from the %d written", switchAt, len(got), want.Len())
		}
		if switchAt >= 0 && s.direct {
			t.Errorf("still direct after the pressure")
		}
	}
}
