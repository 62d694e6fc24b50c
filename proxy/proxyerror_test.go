package proxy

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/wstap/wstap/capture/record"
	"github.com/wstap/wstap/capture/report"
	"github.com/wstap/wstap/internal/testkit"
)

// garbageRecordUpstream is a TLS 1.2 server (crypto/tls) that answers the
// upgrade with 101 and then writes, under TLS, a TLS application data record
// whose bytes are random: wstap's TLS client cannot authenticate it and ends
// the leg with a bad_record_mac alert of its own.
func garbageRecordUpstream(t *testing.T) (addr string, ca *CA) {
	t.Helper()
	ca, leaf := caLeaf(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{*leaf}, MaxVersion: tls.VersionTLS12}
	addr = testkit.Listen(t, "127.0.0.1", func(raw net.Conn) {
		defer raw.Close()
		tc := tls.Server(raw, cfg)
		br := bufio.NewReader(tc)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		fmt.Fprintf(tc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", rfcAccept)
		time.Sleep(200 * time.Millisecond)
		rec := make([]byte, 5+48)
		copy(rec, []byte{23, 3, 3, 0, 48}) // application_data, TLS 1.2, 48 bytes
		rand.Read(rec[5:])
		raw.Write(rec)
		raw.SetReadDeadline(time.Now().Add(5 * time.Second))
		br.ReadByte() // until wstap hangs up
	})
	return addr, ca
}

// TestProxyErrorBlamesWstap: a session that wstap's own TLS client ends (a
// record it cannot read, forced by the upstream) is proxy-error with
// end.first proxy and a finding that says what failed, never an upstream
// drop; and the report names it in its first lines.
func TestProxyErrorBlamesWstap(t *testing.T) {
	addr, ca := garbageRecordUpstream(t)
	p := startTestProxy(t, "wss://"+addr, true, ca.Pool())
	cl, err := tls.Dial("tcp", p.srv.Addr().String(), &tls.Config{RootCAs: p.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	cl.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(cl, upgradeRequest)
	got, err := io.ReadAll(cl)
	if !strings.HasPrefix(string(got), "HTTP/1.1 101") || strings.Contains(string(got), "\x88") {
		t.Errorf("client read %q (%v), want the 101 and no close frame (1006)", got, err)
	}
	cl.Close()
	p.waitRecords(1)
	r := p.records()[0]
	if r.Verdict != record.VerdictProxyError || r.End.First != record.SideProxy || r.End.How != record.HowTLSError || !r.Abnormal {
		t.Errorf("verdict %s end %+v abnormal %v; want proxy-error, first proxy, tls-error, 1006", r.Verdict, r.End, r.Abnormal)
	}
	found := false
	for _, f := range r.Findings {
		found = found || f.Rule == ruleProxyError && strings.Contains(f.Detail, "bad record MAC")
	}
	if !found {
		t.Errorf("findings %+v, want a proxy-error finding naming the bad record MAC", r.Findings)
	}

	run, err := report.LoadRun(p.dir)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	if err := report.Summarize(run).WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("wstap report:\n%s", text.String())
	lines := strings.SplitN(text.String(), "\n", 25)
	if !strings.Contains(strings.Join(lines[:min(24, len(lines))], "\n"), "1006 caused by wstap itself: 1") {
		t.Errorf("the report's first lines do not name wstap's own 1006:\n%s", text.String())
	}
}
