package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// lorisCuts is what the slow clients saw, over all waves.
type lorisCuts struct {
	mu sync.Mutex
	// after is, per connection the proxy cut, the time from the start of
	// its dial to the cut.
	after                                []time.Duration
	dialed, late, early, uncut, dialErrs int
	pending, maxPending                  int
	connected                            atomic.Int64 // in the current wave
}

// lorisWave dials lorisConns slow connections (lorisDialers at a time, over
// lorisSources source addresses), lets each trickle lorisHead until the
// proxy cuts it, and returns when every one has ended; it moves rtts through
// the connect, pending and cut phases.
func lorisWave(addr string, rtts *lorisRTTs, cuts *lorisCuts) {
	rtts.phase.Store(phaseConnect)
	cuts.connected.Store(0)
	// A connection still open this long after its dial was never cut.
	giveUp := time.Now().Add(lorisHeaderTimeout + 3*lorisCutSlack + 5*time.Second)
	sem := make(chan struct{}, lorisDialers)
	var wg sync.WaitGroup
	for i := range lorisConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%lorisSources))}
			dialer := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
			sem <- struct{}{}
			start := time.Now()
			c, err := dialer.Dial("tcp", addr)
			<-sem
			if err != nil {
				cuts.mu.Lock()
				cuts.dialErrs++
				cuts.mu.Unlock()
				lorisConnected(rtts, cuts)
				return
			}
			lorisConnected(rtts, cuts)
			lorisTrickle(c, start, giveUp, rtts, cuts)
		}()
	}
	wg.Wait()
	rtts.phase.Store(phaseIdle)
}

// lorisConnected counts a finished dial; the last one of the wave starts
// the pending phase (unless a cut already started the cut phase).
func lorisConnected(rtts *lorisRTTs, cuts *lorisCuts) {
	if cuts.connected.Add(1) == lorisConns {
		rtts.phase.CompareAndSwap(phaseConnect, phasePending)
	}
}

// lorisTrickle writes lorisHead to c a byte every lorisByteEvery until the
// proxy ends the connection or giveUp passes, and records when it was cut
// (counted from start, the start of the dial).
func lorisTrickle(c net.Conn, start, giveUp time.Time, rtts *lorisRTTs, cuts *lorisCuts) {
	defer c.Close()
	cuts.mu.Lock()
	cuts.dialed++
	cuts.pending++
	cuts.maxPending = max(cuts.maxPending, cuts.pending)
	cuts.mu.Unlock()
	buf := make([]byte, 64)
	for i := 0; i < len(lorisHead) && time.Now().Before(giveUp); i++ {
		if _, err := c.Write([]byte{lorisHead[i]}); err != nil {
			lorisCut(rtts, cuts, time.Since(start))
			return
		}
		c.SetReadDeadline(time.Now().Add(lorisByteEvery))
		_, err := c.Read(buf)
		var ne net.Error
		if err != nil && errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		// EOF or RST from the proxy, or (it should not) an answer: cut.
		lorisCut(rtts, cuts, time.Since(start))
		return
	}
	cuts.mu.Lock()
	cuts.pending--
	cuts.uncut++
	cuts.mu.Unlock()
}

// lorisCut records a connection the proxy ended d after its dial started.
func lorisCut(rtts *lorisRTTs, cuts *lorisCuts, d time.Duration) {
	rtts.phase.CompareAndSwap(phasePending, phaseCut)
	rtts.phase.CompareAndSwap(phaseConnect, phaseCut)
	cuts.mu.Lock()
	defer cuts.mu.Unlock()
	cuts.pending--
	cuts.after = append(cuts.after, d)
	switch {
	case d > lorisHeaderTimeout+lorisCutSlack:
		cuts.late++
	case d < lorisHeaderTimeout:
		cuts.early++
	}
}

// lorisPct is the nearest-rank percentile q of sorted durations.
func lorisPct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
