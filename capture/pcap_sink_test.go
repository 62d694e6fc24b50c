package capture

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestSpoolKeepsEveryByte: the files hold exactly what was written, in
// order, across partial-block flushes (rewritten in place with direct I/O),
// whole buffers, a new file and switches to buffered writes under pressure
// and back to direct ones once it is over.
func TestSpoolKeepsEveryByte(t *testing.T) {
	for _, pw := range []struct{ from, to int64 }{{-1, -1}, {3, 1 << 30}, {3, 12}} {
		dir := t.TempDir()
		var puts atomic.Int64
		behind := func() bool { n := puts.Load(); return pw.from >= 0 && n >= pw.from && n < pw.to }
		sp := newSpool(3)
		sp.wait = true
		sw := &sinkWriter{dir: dir, pressure: behind}
		var modes []bool // direct or not, at each buffer written
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ob := range sp.full {
				sw.put(ob)
				if sw.sink != nil {
					modes = append(modes, sw.sink.direct)
				}
				puts.Add(1)
				sp.free <- ob
			}
		}()
		rnd := rand.New(rand.NewSource(1))
		var want [2]bytes.Buffer
		for i := range 40 {
			if i == 30 && !sp.startFile(2) {
				t.Fatal("no buffer for the second file")
			}
			p := make([]byte, rnd.Intn(3*sinkSize/4)+1)
			rnd.Read(p)
			want[i/30].Write(p)
			if _, err := sp.Write(p); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				sp.flush()
			}
		}
		sp.close()
		<-done
		sp.release()
		if sw.err != nil {
			t.Fatal(sw.err)
		}
		for i, name := range []string{PcapFile, pcapName(2)} {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[i].Bytes()) {
				t.Errorf("pressure %v: %s of %d bytes differs from the %d written", pw, name, len(got), want[i].Len())
			}
		}
		checkSinkModes(t, modes, pw.from, pw.to)
	}
}

// checkSinkModes checks the direct I/O state at each buffer written, under
// pressure from the from-th buffer to the to-th.
func checkSinkModes(t *testing.T, modes []bool, from, to int64) {
	t.Helper()
	if len(modes) == 0 || !modes[0] {
		t.Logf("no direct I/O on this file system: nothing to switch")
		return
	}
	wasBuffered := false
	for _, d := range modes {
		wasBuffered = wasBuffered || !d
	}
	last := modes[len(modes)-1]
	switch {
	case from >= 0 && !wasBuffered:
		t.Errorf("pressure %d-%d: direct throughout", from, to)
	case to == 1<<30 && last:
		t.Errorf("pressure %d-%d: direct again under pressure", from, to)
	case to == 12 && !last:
		t.Errorf("pressure %d-%d: still buffered once the pressure was over", from, to)
	}
}
