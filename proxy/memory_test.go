package proxy

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestMemSettleWaitsForQuiet: after a burst, the memory goes back to the
// system only at a tick in which nothing was relayed — never while bytes
// flow, since the scavenge stalls every allocating goroutine.
func TestMemSettleWaitsForQuiet(t *testing.T) {
	var relayed atomic.Int64
	released := make(chan time.Time, 1)
	m := &memSettle{
		relayed: func() int64 { return relayed.Load() },
		release: func() { released <- time.Now() },
		tick:    20 * time.Millisecond,
		stopped: make(chan struct{}),
	}
	m.opened.Store(settleBurst)
	busy := make(chan struct{})
	go func() {
		for {
			select {
			case <-busy:
				return
			case <-time.After(2 * time.Millisecond):
				relayed.Add(100)
			}
		}
	}()
	done := make(chan struct{})
	go func() { m.settle(); close(done) }()
	select {
	case <-released:
		t.Fatal("memory released while the relay was busy")
	case <-time.After(200 * time.Millisecond):
	}
	quiet := time.Now()
	close(busy)
	select {
	case at := <-released:
		if at.Sub(quiet) > time.Second {
			t.Errorf("released %v after the relay fell quiet, want within a few ticks", at.Sub(quiet))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("memory never released once the relay was quiet")
	}
	<-done
}

// TestMemSettleSmallBurst: fewer than settleBurst new sessions release nothing.
func TestMemSettleSmallBurst(t *testing.T) {
	called := false
	m := &memSettle{relayed: func() int64 { return 0 }, release: func() { called = true }, tick: time.Millisecond, stopped: make(chan struct{})}
	m.opened.Store(settleBurst - 1)
	m.settle()
	if called {
		t.Error("released after a burst of fewer than settleBurst sessions")
	}
}

// TestMemSettleAfterStop: a burst that ends after the server stopped
// returns nothing.
func TestMemSettleAfterStop(t *testing.T) {
	called := false
	m := &memSettle{relayed: func() int64 { return 0 }, release: func() { called = true }, tick: time.Millisecond, stopped: make(chan struct{})}
	m.opened.Store(settleBurst)
	m.stop()
	m.settle()
	if called {
		t.Error("released after stop")
	}
}
