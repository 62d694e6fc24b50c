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
// whole buffers and switches to buffered writes under pressure and back to
// direct ones once it is over.
func TestFileSinkKeepsEveryByte(t *testing.T) {
	for _, pw := range []struct{ from, to int }{{-1, -1}, {3, 1 << 30}, {3, 20}} {
		buf, free := newSinkBuffer()
		path := filepath.Join(t.TempDir(), "sink")
		writes, wasBuffered := 0, false
		behind := func() bool { return pw.from >= 0 && writes >= pw.from && writes < pw.to }
		s, err := openSink(path, buf, behind)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("direct I/O: %v", s.direct)
		canDirect := s.canDirect
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
			wasBuffered = wasBuffered || !s.direct
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
			t.Errorf("pressure %v: file of %d bytes differs from the %d written", pw, len(got), want.Len())
		}
		if !canDirect {
			continue // buffered throughout: nothing to switch
		}
		switch {
		case pw.from >= 0 && !wasBuffered:
			t.Errorf("pressure %v: direct throughout", pw)
		case pw.to == 1<<30 && s.direct:
			t.Errorf("pressure %v: direct again under pressure", pw)
		case pw.to == 20 && !s.direct:
			t.Errorf("pressure %v: still buffered once the pressure was over", pw)
		}
	}
}
