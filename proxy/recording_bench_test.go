package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/wstap/wstap/capture"
	"github.com/wstap/wstap/internal/platform"
)

// BenchmarkRecordingCost measures what the pcapng costs per message, as
// cmd/wstap-bench does across processes but in one: wss on both legs, its
// echo upstream (internal/platform, which writes the echoes of what it
// read at once), a client that keeps 256 messages of 64 bytes (32 of 16
// KiB) in flight and writes all it may send in one write.
// Three pipelines run interleaved in the same benchmark: the echo dialed
// directly, through wstap with --pcap=false, and through wstap recording.
// The process's CPU time (getrusage) per message of each, less direct's,
// is the proxy's; rec-% is the capture's share of the recording proxy's
// CPU: (capture - nop) / (capture - direct), over the whole run and as the
// median of its ten rounds. WSTAP_BENCH_PIPE=NAME runs
// only the pipeline NAME (direct, nop or capture), for a profile.
func BenchmarkRecordingCost(b *testing.B) {
	for _, bc := range []struct {
		name           string
		size, inFlight int
	}{{"64B", 64, 256}, {"16KiB", 16 << 10, 32}} {
		b.Run(bc.name, func(b *testing.B) { benchRecordingCost(b, bc.size, bc.inFlight) })
	}
}

func benchRecordingCost(b *testing.B, size, inFlight int) {
	plat, err := platform.Start(platform.Config{Addr: "127.0.0.1:0", TLS: true, ReadBuffer: 16 << 10})
	if err != nil {
		b.Fatal(err)
	}
	defer plat.Close()
	upURL, upCAs := plat.URL(), plat.CertPool()
	pipes := []*benchPipe{
		{name: "direct", url: upURL, cas: upCAs},
		newBenchProxy(b, "nop", upURL, upCAs, false),
		newBenchProxy(b, "capture", upURL, upCAs, true),
	}
	for _, p := range pipes {
		p.dial(b, size, inFlight)
	}
	if only := os.Getenv("WSTAP_BENCH_PIPE"); only != "" {
		// One pipeline alone, for a profile or perf stat of it.
		benchOnePipe(b, pipes, only)
		return
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	// Rounds interleave the three so that the machine's other load falls
	// on all of them alike.
	const rounds = 10
	per := max(b.N/rounds, 1)
	var shares []float64
	for r := range rounds {
		var used [3]time.Duration
		for k := range pipes {
			p := pipes[(r+k)%len(pipes)]
			c0 := p.cpu
			p.run(b, per)
			used[(r+k)%len(pipes)] = p.cpu - c0
		}
		shares = append(shares, 100*float64(used[2]-used[1])/float64(used[2]-used[0]))
	}
	b.StopTimer()
	slices.Sort(shares)
	b.ReportMetric(shares[len(shares)/2], "rec-%-median")
	for _, p := range pipes {
		p.close(b)
	}
	cpu := func(p *benchPipe) float64 { return float64(p.cpu.Nanoseconds()) / float64(p.msgs) }
	direct, nop, capt := cpu(pipes[0]), cpu(pipes[1]), cpu(pipes[2])
	b.ReportMetric(nop-direct, "nop-cpu-ns/msg")
	b.ReportMetric(capt-direct, "capture-cpu-ns/msg")
	b.ReportMetric(100*(capt-nop)/(capt-direct), "rec-%")
}

// benchOnePipe runs b.N messages through the pipeline named only.
func benchOnePipe(b *testing.B, pipes []*benchPipe, only string) {
	for _, p := range pipes {
		if p.name == only {
			b.ResetTimer()
			p.run(b, b.N)
			b.StopTimer()
			b.ReportMetric(float64(p.cpu.Nanoseconds())/float64(p.msgs), "cpu-ns/msg")
		}
	}
	for _, p := range pipes {
		p.close(b)
	}
}

// benchPipe is one client session and what it cost.
type benchPipe struct {
	name     string
	url      string
	cas      *x509.CertPool
	srv      *Server
	rec      *capture.Recorder
	pc       *capture.Pcap
	conn     *websocket.Conn
	br       *bufio.Reader
	frames   []byte // inFlight prebuilt masked frames
	frame    int    // bytes of one of them
	echo     int    // bytes of the echo of one message
	inFlight int
	msgs     int64
	cpu      time.Duration
}

// newBenchProxy starts wstap, TLS on both legs, in front of upURL.
func newBenchProxy(b *testing.B, name, upURL string, upCAs *x509.CertPool, capOn bool) *benchPipe {
	dir := b.TempDir()
	ca, err := LoadOrCreateCA(filepath.Join(dir, "ca"))
	if err != nil {
		b.Fatal(err)
	}
	rec, err := capture.OpenRecorder(filepath.Join(dir, "run"), capture.RunInfo{Version: "bench"}, 0, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse(upURL)
	cfg := Config{Listen: "127.0.0.1:0", Upstream: u, TLS: true, CA: ca, UpstreamCAs: upCAs,
		Recorder: rec, Log: zerolog.Nop(), MaxMessageEvents: -1}
	p := &benchPipe{name: name, rec: rec, cas: ca.Pool()}
	if capOn {
		if p.pc, err = capture.OpenPcap(filepath.Join(dir, "run"), capture.PcapOptions{}); err != nil {
			b.Fatal(err)
		}
		cfg.Tap = p.pc
	}
	if p.srv, err = Start(cfg); err != nil {
		b.Fatal(err)
	}
	p.url = "wss://" + p.srv.Addr().String() + "/bench"
	return p
}

// dial opens the client session and prebuilds frames for a full window.
func (p *benchPipe) dial(b *testing.B, size, inFlight int) {
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: p.cas}, ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}
	c, _, err := d.Dial(p.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	p.conn, p.inFlight = c, inFlight
	p.br = bufio.NewReaderSize(c.NetConn(), 64<<10)
	f := rawFrame(true, 0, 2, true, make([]byte, size))
	p.frame = len(f)
	p.echo = len(f) - 4 // the echo is unmasked
	for range inFlight {
		p.frames = append(p.frames, f...)
	}
}

// run streams n messages as cmd/wstap-bench does, with at most p.inFlight
// unanswered: the writer sends as many frames as there are free slots in
// one write, the reader frees a slot per echo. It adds the process's CPU
// time to p.cpu.
func (p *benchPipe) run(b *testing.B, n int) {
	slots := make(chan struct{}, p.inFlight)
	for range p.inFlight {
		slots <- struct{}{}
	}
	done := make(chan error, 1)
	c0 := processCPU()
	go func() {
		for sent := 0; sent < n; {
			<-slots
			k := 1
		more:
			for k < n-sent {
				select {
				case <-slots:
					k++
				default:
					break more
				}
			}
			if _, err := p.conn.NetConn().Write(p.frames[:k*p.frame]); err != nil {
				done <- err
				return
			}
			sent += k
		}
		done <- nil
	}()
	for range n {
		if _, err := p.br.Discard(p.echo); err != nil {
			b.Fatalf("%s: reading echoes: %v", p.name, err)
		}
		select {
		case slots <- struct{}{}:
		default:
		}
	}
	if err := <-done; err != nil {
		b.Fatalf("%s: writing: %v", p.name, err)
	}
	p.cpu += processCPU() - c0
	p.msgs += int64(n)
}

func (p *benchPipe) close(b *testing.B) {
	p.conn.Close()
	if p.srv == nil {
		return
	}
	stopBenchProxy(b, p.srv, p.rec, p.pc)
}

// processCPU is the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
