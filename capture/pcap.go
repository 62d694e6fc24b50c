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
	// QueueMB bounds the output buffers (4 MiB each, at least two) that
	// hold packets waiting for the disk; 0 means 64 MiB.
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
// with PcapOptions.BothLegs. It is a Tap: its methods build the packets of
// what they are given, under a mutex, straight into the current output
// buffer, while the bytes are still in the caller's cache, and return.
// One I/O goroutine writes full buffers to disk and creates the files of a
// rotation, so no caller waits for the disk: when every buffer waits for
// it, what does not fit is dropped and counted (docs/records.md, rule 6).
type Pcap struct {
	// mu guards w, sp and closed.
	mu      sync.Mutex
	w       *pcapWriter
	sp      *spool
	closed  bool
	one     bool // one conversation per session
	dropped atomic.Int64
	ioErr   atomic.Pointer[error] // the I/O goroutine's first failure
	done    chan struct{}

	closeOnce sync.Once
	closeErr  error
}

var _ Tap = (*Pcap)(nil)

// OpenPcap creates dir/capture.pcapng and starts the I/O goroutine.
func OpenPcap(dir string, opts PcapOptions) (*Pcap, error) {
	if opts.SnapLen < 0 || opts.MaxMB < 0 || opts.QueueMB < 0 {
		return nil, fmt.Errorf("pcap options %+v: negative value", opts)
	}
	if opts.QueueMB == 0 {
		opts.QueueMB = 64
	}
	if err := makeRunDir(dir); err != nil {
		return nil, err
	}
	p := &Pcap{done: make(chan struct{}), one: !opts.BothLegs}
	p.sp = newSpool(opts.QueueMB << 20 / sinkSize)
	behind := func() bool { return len(p.sp.full) > p.sp.max/2 }
	sw := &sinkWriter{dir: dir, pressure: behind}
	var err error
	if sw.sink, err = openSink(dir, 1, behind); err != nil {
		p.sp.release()
		return nil, err
	}
	if p.w, err = newPcapWriter(p.sp, opts, &p.dropped); err != nil {
		sw.abandon()
		p.sp.release()
		return nil, err
	}
	go p.run(sw)
	return p, nil
}

// Dropped returns how many per-leg records (segments of data, handshakes,
// endings) were not written because every output buffer waited for the
// disk, or the disk failed.
func (p *Pcap) Dropped() int64 { return p.dropped.Load() }

// Close writes what is held, ends the file, waits for the I/O goroutine
// to write it and stops it. It may be called more than once; later calls
// return the first result.
func (p *Pcap) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		w := p.syncErr()
		p.sp.wait = true // Close may wait for the disk
		if w.err == nil {
			w.err = w.flushAllHeld()
		}
		if w.err == nil {
			w.err = w.file.close(p.dropped.Load())
		}
		p.sp.close()
		p.mu.Unlock()
		<-p.done
		p.sp.release()
		p.closeErr = w.err
		if e := p.ioErr.Load(); e != nil {
			p.closeErr = *e
		}
	})
	return p.closeErr
}

// syncErr gives the writer the I/O goroutine's failure, if any, and
// returns it. Once the writer has an error, everything is counted as
// dropped.
func (p *Pcap) syncErr() *pcapWriter {
	w := p.w
	if e := p.ioErr.Load(); e != nil && w.err == nil {
		w.err = *e
	}
	return w
}

// after rotates the file when it is full, and keeps the first error.
func (p *Pcap) after(w *pcapWriter, err error, t time.Time) {
	if err == nil && w.file.full() {
		err = w.rotate(t)
	}
	if err != nil && w.err == nil {
		w.err = err
	}
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
	addrs := [4]netip.AddrPort{addrPort(c.Client), addrPort(c.Listen), addrPort(c.Local), addrPort(c.Upstream)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.syncErr(); p.closed || w.err != nil {
		p.dropped.Add(int64(legCount(legs)))
	} else {
		p.after(w, w.open(c.Session, legs, t, &addrs), t)
	}
}

// dataPiece bounds the bytes built at once, so that their packets fit in
// an output buffer.
const dataPiece = 16 * maxSegment

// Data writes b as sent on the given legs.
func (p *Pcap) Data(session string, legs Leg, fromServer bool, t time.Time, b []byte) {
	legs &= LegBoth
	if p.one {
		// Bytes for the upstream leg alone are the upgrade request as
		// rewritten for the upstream: the session shows the client's.
		legs &= LegClient
	}
	if legs == 0 || len(b) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.syncErr(); p.closed || w.err != nil {
		if w.sessions[session] != nil {
			p.dropped.Add(int64(legCount(legs) * ((len(b) + maxSegment - 1) / maxSegment)))
		}
		return
	}
	for len(b) > 0 && p.w.err == nil {
		n := min(len(b), dataPiece)
		p.after(p.w, p.w.data(session, legs, fromServer, t, b[:n]), t)
		b = b[n:]
	}
}

// End writes the end of the given legs: a FIN, or a RST when rst is true,
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.syncErr(); p.closed || w.err != nil {
		if w.sessions[session] != nil {
			p.dropped.Add(int64(legCount(legs)))
		}
		return
	}
	p.after(p.w, p.w.end(session, legs, fromServer, rst, t), t)
}

// Forget drops the state of a session once both legs have ended.
func (p *Pcap) Forget(session string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.forget(session)
}

// run is the I/O goroutine: it writes the full buffers in file order and,
// once a second, has the current buffer written too when it holds new
// bytes, so that a quiet capture still reaches the disk.
func (p *Pcap) run(sw *sinkWriter) {
	defer close(p.done)
	defer sw.abandon()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case ob, ok := <-p.sp.full:
			if !ok {
				return
			}
			sw.put(ob)
			if sw.err != nil {
				p.ioErr.CompareAndSwap(nil, &sw.err)
			}
			p.sp.free <- ob // never blocks: it holds every buffer
		case <-tick.C:
			// Not while a relay goroutine builds packets, nor while Close
			// waits for a buffer this goroutine is to write.
			if p.mu.TryLock() {
				if !p.closed {
					p.sp.flush()
				}
				p.mu.Unlock()
			}
		}
	}
}

// addrPort converts a TCP address; nil gives the zero AddrPort.
func addrPort(a *net.TCPAddr) netip.AddrPort {
	if a == nil {
		return netip.AddrPort{}
	}
	return a.AddrPort()
}
