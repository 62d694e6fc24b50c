package procs

import (
	"net"
	"os"
	"runtime"
	"testing"
)

func TestFreeAddrCanBeListenedOn(t *testing.T) {
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	ln.Close()
}

func TestRSSOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("RSS reads /proc, Linux only")
	}
	before, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// 64 MiB touched page by page must show.
	b := make([]byte, 64<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	after, err := RSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 32<<20 {
		t.Errorf("RSS %d then %d bytes after touching 64 MiB, want it grown by at least 32 MiB", before, after)
	}
	runtime.KeepAlive(b)
	if _, err := RSS(-1); err == nil {
		t.Error("RSS of pid -1: no error")
	}
}
