package renegtls

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/wstap/wstap/internal/testkit"
)

// goRelease is the Go release gotls was copied from.
const goRelease = "go1.26.8"

// TestForkMatchesGoSource rebuilds gotls from this machine's Go source with
// gotls/sync.sh (copy, shim imports, wstap.patch) and fails when a committed
// file differs: every change to the copy is in wstap.patch, listed in
// PATCH.md, or in the imports step of sync.sh.
func TestForkMatchesGoSource(t *testing.T) {
	if runtime.Version() != goRelease {
		testkit.SkipOrFail(t, "gotls was copied from %s, this is %s: run gotls/sync.sh to move it", goRelease, runtime.Version())
	}
	goroot := runtime.GOROOT()
	if _, err := os.Stat(filepath.Join(goroot, "src", "crypto", "tls", "conn.go")); err != nil {
		testkit.SkipOrFail(t, "Go source not found under %s: %v", goroot, err)
	}
	testkit.NeedTool(t, "patch")
	testkit.NeedTool(t, "sh")
	dst := t.TempDir()
	cmd := exec.Command("sh", filepath.Join("gotls", "sync.sh"), goroot)
	cmd.Env = append(os.Environ(), "DST="+dst)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gotls/sync.sh: %v\n%s", err, out)
	}
	built, _ := filepath.Glob(filepath.Join(dst, "*.go"))
	committed, _ := filepath.Glob(filepath.Join("gotls", "*.go"))
	if len(built) != len(committed) || len(built) < 20 {
		t.Fatalf("sync.sh made %d files, gotls holds %d", len(built), len(committed))
	}
	for _, f := range committed {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join(dst, filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from Go's source plus wstap.patch (%v): regenerate wstap.patch with sh gotls/sync.sh -diff", f, err)
		}
	}
}
