package capture

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Issue 14, item 4: a run dir reused with --out, made by hand with 0755 and
// holding files of an older run with 0644, is made private when wstap
// writes to it again.
func TestRecorderMakesReusedRunDirPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{EventsFile, SessionsFile, RunFile} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, name), 0o644)
	}
	os.Chmod(dir, 0o755)
	r, err := OpenRecorder(dir, RunInfo{}, 0, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPcap(dir, PcapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	r.Close(time.Now())
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != runDirMode {
		t.Errorf("run dir: mode %o, want %o", fi.Mode().Perm(), runDirMode)
	}
	for _, name := range []string{EventsFile, SessionsFile, RunFile, PcapFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != PrivateMode {
			t.Errorf("%s: mode %o, want %o", name, fi.Mode().Perm(), PrivateMode)
		}
	}
}
