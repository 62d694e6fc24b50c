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

// quietTick is how often, after a burst, the relay is checked for a quiet
// moment; quietTries ticks without one and the freed pages stay with Go.
const (
	quietTick  = time.Second
	quietTries = 60
)

// memSettle returns to the system the memory a burst of new sessions left
// behind once the burst is over. Each TLS handshake allocates tens of KiB
// that are garbage once the session relays; after a burst, Go keeps the
// freed heap for the next allocations rather than returning it, and a proxy
// that then holds thousands of idle sessions would show it as its RSS for
// minutes (the benchmark measured 5 KiB per idle wss session of heap freed
// but kept).
//
// It waits for a moment when the relay is quiet, so that no frame waits for
// it: debug.FreeOSMemory collects and then scavenges the whole heap under
// the runtime's heap lock, which stalls every goroutine that allocates for
// tens of milliseconds (with 5,000 sessions each echoing a message a second,
// it took the benchmark's echo p99 from 7 to 47–83 ms; a forced collection
// alone, to 10–27 ms). So after a burst it runs at the first one-second tick
// in which no session relayed a byte; a proxy that never falls quiet leaves
// its memory to Go's own collector and scavenger.
type memSettle struct {
	opened  atomic.Int64  // sessions started since memory was last returned
	relayed func() int64  // bytes relayed so far by every session
	release func()        // debug.FreeOSMemory when nil
	tick    time.Duration // quietTick when zero
	mu      sync.Mutex
	timer   *time.Timer
	stopped chan struct{}
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

// settle runs when a burst is over and returns the memory at the first
// quiet tick.
func (m *memSettle) settle() {
	if m.opened.Swap(0) < settleBurst || m.relayed == nil {
		return
	}
	tick, release := m.tick, m.release
	if tick == 0 {
		tick = quietTick
	}
	if release == nil {
		release = debug.FreeOSMemory
	}
	m.mu.Lock()
	stopped := m.stopped // stop sets the field to nil once it has closed it
	m.mu.Unlock()
	if stopped == nil {
		return // the server has stopped
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	last := m.relayed()
	for range quietTries {
		select {
		case <-stopped:
			return
		case <-t.C:
		}
		if m.opened.Load() >= settleBurst {
			return // a new burst: its own end settles it
		}
		now := m.relayed()
		if now == last {
			release()
			return
		}
		last = now
	}
}

// stop cancels a pending return (the server shuts down).
func (m *memSettle) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timer != nil {
		m.timer.Stop()
	}
	if m.stopped != nil {
		close(m.stopped)
		m.stopped = nil
	}
}
