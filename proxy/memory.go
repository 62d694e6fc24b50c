package proxy

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// settleQuiet is how long no session may start before a burst counts as over.
const settleQuiet = 2 * time.Second

// settleBurst is how many sessions a burst needs before its end returns memory.
const settleBurst = 256

// memSettle returns to the system the memory a burst of new sessions left
// behind once the burst is over. Each TLS handshake allocates tens of KiB
// that are garbage once the session relays; after a burst, Go keeps the
// freed heap for the next allocations rather than returning it, and a proxy
// that then holds thousands of idle sessions would show it as its RSS for
// minutes (the benchmark measured 5 KiB per idle wss session of heap freed
// but kept). One forced collection after the burst, and none while sessions
// keep opening.
type memSettle struct {
	opened atomic.Int64 // sessions started since memory was last returned
	mu     sync.Mutex
	timer  *time.Timer
}

// started notes a session starting to relay.
func (m *memSettle) started() {
	if m.opened.Add(1) < settleBurst {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer == nil {
		m.timer = time.AfterFunc(settleQuiet, m.settle)
		return
	}
	m.timer.Reset(settleQuiet)
}

// settle returns the freed heap to the system when a burst is over.
func (m *memSettle) settle() {
	if m.opened.Swap(0) >= settleBurst {
		debug.FreeOSMemory()
	}
}

// stop cancels a pending return (the server shuts down).
func (m *memSettle) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer != nil {
		m.timer.Stop()
	}
}
