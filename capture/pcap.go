package capture

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// PcapOptions configure the decrypted capture.
type PcapOptions struct {
	// SnapLen keeps only the first SnapLen payload bytes of each WebSocket
	// data frame (--pcap-snap); 0 keeps everything.
	SnapLen int
	// MaxMB rotates to capture-0002.pcapng and on once a file reaches
	// MaxMB MiB (--pcap-max-mb); 0 never rotates.
	MaxMB int
	// QueueLen bounds the queue of records waiting for the writer; 0 means 8192.
	QueueLen int
	// QueueMB bounds the bytes waiting in the queue; 0 means 64 MiB.
	QueueMB int
	// BothLegs writes each leg of a session as a conversation of its own
	// (--pcap-legs both). Without it each session is one conversation
	// between the client's and the upstream's addresses, as it would look
	// without wstap: each relayed byte is written once, the upgrade request
	// as the client sent it, and each side's FIN or RST where that side
	// sent it (the ones wstap sent to mirror them are left out).
	BothLegs bool
}

// Pcap writes the decrypted traffic of every session to capture.pcapng as
// synthetic Ethernet/IP/TCP conversations: one per session, or one per leg
// with PcapOptions.BothLegs. It is a Tap:
// its methods copy what they are given into a bounded queue and return at
// once; a single goroutine writes the file. What does not fit in the queue
// is dropped and counted (docs/records.md, rule 6).
type Pcap struct {
	q        chan pcapItem
	quit     chan struct{}
	done     chan struct{}
	maxQueue int64
	queued   atomic.Int64 // bytes waiting in q
	dropped  atomic.Int64

	// mu guards sessions and closed; senders hold it shared while they
	// enqueue so that Close sees every send that got in.
	mu       sync.RWMutex
	sessions map[string]*tapSession
	closed   bool

	lateMu sync.Mutex
	late   []string // sessions whose Forget did not fit in the queue

	w         *pcapWriter
	closeOnce sync.Once
	closeErr  error
	one       bool // one conversation per session
}

var _ Tap = (*Pcap)(nil)

// tapSession is the callers' side of a session.
type tapSession struct {
	// lost counts bytes dropped per [leg][sending side] since the last
	// queued chunk, so the writer can leave a gap in the sequence numbers.
	lost [2][2]atomic.Int64
	// dead marks legs whose Open was dropped.
	dead [2]atomic.Bool
}

// itemKind tells the writer what a queued item is.
type itemKind uint8

const (
	itemOpen itemKind = iota
	itemData
	itemEnd
	itemForget
)

// pcapItem is one queued record.
type pcapItem struct {
	kind       itemKind
	legs       Leg
	fromServer bool
	rst        bool
	n          int
	session    string
	t          time.Time
	buf        *[]byte
	size       int        // memory held by buf, counted against the queue's bound
	pool       *sync.Pool // where buf goes back; nil: the size-class pools
	sum        uint64     // sum16 of the data, when summed
	summed     bool
	skip       [2][2]int64        // bytes dropped before this item, per [leg][sending side]
	addrs      *[4]netip.AddrPort // Open: client, listen, local, upstream
}

// OpenPcap creates dir/capture.pcapng and starts the writer goroutine.
func OpenPcap(dir string, opts PcapOptions) (*Pcap, error) {
	if opts.SnapLen < 0 || opts.MaxMB < 0 || opts.QueueLen < 0 || opts.QueueMB < 0 {
		return nil, fmt.Errorf("pcap options %+v: negative value", opts)
	}
	if opts.QueueLen == 0 {
		opts.QueueLen = 8192
	}
	if opts.QueueMB == 0 {
		opts.QueueMB = 64
	}
	p := &Pcap{
		q:        make(chan pcapItem, opts.QueueLen),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		maxQueue: int64(opts.QueueMB) << 20,
		sessions: make(map[string]*tapSession),
		one:      !opts.BothLegs,
	}
	behind := func() bool { return p.queued.Load() > p.maxQueue/2 || len(p.q) > cap(p.q)/2 }
	w, err := newPcapWriter(dir, opts, &p.dropped, behind)
	if err != nil {
		return nil, err
	}
	p.w = w
	go p.run()
	return p, nil
}

// Dropped returns how many per-leg records (segments of data, handshakes,
// endings) were not written because the queue was full or the disk failed.
func (p *Pcap) Dropped() int64 { return p.dropped.Load() }

// Close drains the queue, flushes and closes the file. It may be called
// more than once; later calls return the first result.
func (p *Pcap) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.quit)
		<-p.done
		w := p.w
		err := w.err
		if err == nil {
			err = w.flushAllHeld()
		}
		if cerr := w.file.close(p.dropped.Load()); err == nil {
			err = cerr
		}
		w.file.release()
		p.closeErr = err
	})
	return p.closeErr
}

// Open starts the synthetic TCP conversations of the given legs.
func (p *Pcap) Open(c *Conv, legs Leg, t time.Time) {
	legs &= LegBoth
	if p.one && legs != 0 {
		legs = LegClient // the writer's conversation 0 is the session's
	}
	if c == nil || legs == 0 {
		return
	}
	addrs := &[4]netip.AddrPort{addrPort(c.Client), addrPort(c.Listen), addrPort(c.Local), addrPort(c.Upstream)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.dropped.Add(int64(legCount(legs)))
		return
	}
	s := p.sessions[c.Session]
	if s == nil {
		s = &tapSession{}
		p.sessions[c.Session] = s
	}
	if !p.send(pcapItem{kind: itemOpen, legs: legs, session: c.Session, t: t, addrs: addrs}, 0) {
		for i, bit := range [2]Leg{LegClient, LegUpstream} {
			if legs&bit != 0 {
				s.dead[i].Store(true)
			}
		}
	}
}

// Data queues a copy of b as sent on the given legs.
func (p *Pcap) Data(session string, legs Leg, fromServer bool, t time.Time, b []byte) {
	p.data(session, legs, fromServer, t, b, nil, nil)
}

// DataBuf queues b, which starts *buf, without copying it: the writer puts
// buf in pool once it has written it (BufferTap).
func (p *Pcap) DataBuf(session string, legs Leg, fromServer bool, t time.Time, b []byte, buf *[]byte, pool *sync.Pool) bool {
	return p.data(session, legs, fromServer, t, b, buf, pool)
}

// data queues b, taking buf (which b starts) when it is not nil and b fits
// one segment, copying b otherwise. It reports whether it took buf.
func (p *Pcap) data(session string, legs Leg, fromServer bool, t time.Time, b []byte, buf *[]byte, pool *sync.Pool) bool {
	legs &= LegBoth
	if p.one {
		// Bytes for the upstream leg alone are the upgrade request as
		// rewritten for the upstream: the session shows the client's.
		legs &= LegClient
	}
	if legs == 0 || len(b) == 0 {
		return false
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	s := p.sessions[session]
	if s == nil {
		return false // never opened, or already forgotten
	}
	for i, bit := range [2]Leg{LegClient, LegUpstream} {
		if legs&bit != 0 && (p.closed || s.dead[i].Load()) {
			legs &^= bit
			p.dropped.Add(int64((len(b) + maxSegment - 1) / maxSegment))
		}
	}
	if legs == 0 {
		return false
	}
	it := pcapItem{kind: itemData, legs: legs, fromServer: fromServer, session: session, t: t}
	if buf != nil && len(b) <= maxSegment && cap(*buf) <= 64<<10 {
		// Summed here, where the bytes were just read, rather than by the
		// writer, which would read them again from memory.
		it.buf, it.n, it.pool = buf, len(b), pool
		it.sum, it.summed = sum16(b, 0), true
		return p.sendData(s, &it, cap(*buf))
	}
	for len(b) > 0 {
		n := min(len(b), maxSegment)
		it.buf, it.n = getBuf(n), n
		copy(*it.buf, b[:n])
		it.sum, it.summed = sum16(b[:n], 0), true
		if !p.sendData(s, &it, n) {
			putBuf(it.buf)
		}
		b = b[n:]
	}
	return false
}

// sendData queues a data item holding size bytes of memory, with the bytes
// dropped before it, and counts its bytes as lost when it does not fit.
func (p *Pcap) sendData(s *tapSession, it *pcapItem, size int) bool {
	d := dirIndex(it.fromServer)
	it.size = size
	for i, bit := range [2]Leg{LegClient, LegUpstream} {
		if it.legs&bit != 0 {
			it.skip[i][d] = s.lost[i][d].Swap(0)
		}
	}
	if p.send(*it, size) {
		return true
	}
	for i, bit := range [2]Leg{LegClient, LegUpstream} {
		if it.legs&bit != 0 {
			s.lost[i][d].Add(it.skip[i][d] + int64(it.n))
		}
	}
	return false
}

// End queues the end of the given legs: a FIN, or a RST when rst is true,
// sent by the server side of each leg when fromServer is true.
func (p *Pcap) End(session string, legs Leg, fromServer, rst bool, t time.Time) {
	legs &= LegBoth
	if p.one {
		// Only the ends the client and the upstream sent: the client is the
		// client side of its leg, the upstream the server side of its own.
		byPeer := legs&LegClient != 0 && !fromServer || legs&LegUpstream != 0 && fromServer
		legs = 0
		if byPeer {
			legs = LegClient
		}
	}
	if legs == 0 {
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	s := p.sessions[session]
	if s == nil {
		return
	}
	if p.closed {
		p.dropped.Add(int64(legCount(legs)))
		return
	}
	it := pcapItem{kind: itemEnd, legs: legs, fromServer: fromServer, rst: rst, session: session, t: t}
	for i, bit := range [2]Leg{LegClient, LegUpstream} {
		if legs&bit != 0 {
			it.skip[i] = [2]int64{s.lost[i][0].Swap(0), s.lost[i][1].Swap(0)}
		}
	}
	if !p.send(it, 0) {
		for i := range it.skip {
			for d, n := range it.skip[i] {
				s.lost[i][d].Add(n)
			}
		}
	}
}

// Forget drops the state of a session once both legs have ended.
func (p *Pcap) Forget(session string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sessions[session] == nil {
		return
	}
	delete(p.sessions, session)
	if p.closed {
		return
	}
	select {
	case p.q <- pcapItem{kind: itemForget, session: session}:
	default:
		p.lateMu.Lock()
		p.late = append(p.late, session)
		p.lateMu.Unlock()
	}
}

// send queues it without blocking, with size bytes counted against the
// queue's byte bound, and counts a drop per leg when it does not fit.
func (p *Pcap) send(it pcapItem, size int) bool {
	if p.queued.Add(int64(size)) <= p.maxQueue {
		select {
		case p.q <- it:
			return true
		default:
		}
	}
	p.queued.Add(-int64(size))
	p.dropped.Add(int64(legCount(it.legs)))
	return false
}

// batchWait is how long the writer lets items gather after a batch.
const batchWait = 500 * time.Microsecond

// run is the writer goroutine.
func (p *Pcap) run() {
	defer close(p.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case it := <-p.q:
			p.handle(&it)
			for n := len(p.q); n > 0; n-- {
				it = <-p.q
				p.handle(&it)
			}
			// Let the next items gather instead of being woken for each:
			// a wake-up per relayed chunk cost more than writing a 64-byte
			// one. The queue holds far more than arrives meanwhile.
			time.Sleep(batchWait)
		case <-tick.C:
			if len(p.q) == 0 {
				p.forgetLate()
			}
			if p.w.err == nil {
				p.w.err = p.w.file.flush()
			}
		case <-p.quit:
			for {
				select {
				case it := <-p.q:
					p.handle(&it)
				default:
					return
				}
			}
		}
	}
}

// handle writes one item and gives its buffer back.
func (p *Pcap) handle(it *pcapItem) {
	p.w.handle(it)
	if it.buf != nil {
		p.queued.Add(-int64(it.size))
		if it.pool != nil {
			it.pool.Put(it.buf)
		} else {
			putBuf(it.buf)
		}
	}
}

// forgetLate forgets the sessions whose Forget found the queue full; it
// runs when the queue is empty, so their earlier records are written.
func (p *Pcap) forgetLate() {
	p.lateMu.Lock()
	late := p.late
	p.late = nil
	p.lateMu.Unlock()
	for _, s := range late {
		p.w.forget(s)
	}
}

// addrPort converts a TCP address; nil gives the zero AddrPort.
func addrPort(a *net.TCPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	return a.AddrPort()
}

// Buffer pools by size class, so a small frame does not hold a 64 KiB buffer.
var bufPools = [...]struct {
	size int
	pool sync.Pool
}{{size: 512}, {size: 4 << 10}, {size: 64 << 10}}

// getBuf returns a pooled buffer of length n (n <= 64 KiB).
func getBuf(n int) *[]byte {
	for i := range bufPools {
		c := &bufPools[i]
		if n <= c.size {
			if b, ok := c.pool.Get().(*[]byte); ok {
				*b = (*b)[:n]
				return b
			}
			b := make([]byte, n, c.size)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

// putBuf gives a buffer back to its pool.
func putBuf(b *[]byte) {
	for i := range bufPools {
		if c := &bufPools[i]; cap(*b) == c.size {
			c.pool.Put(b)
			return
		}
	}
}
