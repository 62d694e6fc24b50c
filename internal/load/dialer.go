package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"

	"github.com/gobwas/ws"
)

// Dialer opens one session at a time the way Run opens each of its own: TCP
// (directly or through the proxy's CONNECT), TLS for wss, then the upgrade.
// It is for programs that drive their sessions themselves, such as
// wstap-bench and wstap-soak. It may be used from several goroutines.
type Dialer struct {
	p  *plan
	up ws.Dialer
}

// NewDialer checks cfg as Run does. Of its fields only URL, Proxy, Insecure,
// CAFile, RootCAs, Headers, Subprotocol, LocalAddrs and Timeout matter.
func NewDialer(cfg Config) (*Dialer, error) {
	cfg.Sessions = max(cfg.Sessions, 1)
	p, err := check(cfg)
	if err != nil {
		return nil, err
	}
	return &Dialer{p: p, up: p.upgrader()}, nil
}

// Dial opens session i (i picks its source address among LocalAddrs). It
// returns the connection, the bytes the server sent right after its 101
// (usually none; see NewReader) and the subprotocol the server selected.
// FailReason names why it failed.
func (d *Dialer) Dial(ctx context.Context, i int) (net.Conn, []byte, string, error) {
	return d.p.open(ctx, &d.up, i)
}

// FailReason is the reason Dial failed: one of the Fail* reasons or
// "http-status:<code>"; "" for an error that did not come from Dial.
func FailReason(err error) string {
	var oe *openError
	if errors.As(err, &oe) {
		return oe.reason
	}
	return ""
}

// NewReader is a reader of size bytes over a session's connection that
// first returns early, the bytes that came with the 101.
func NewReader(conn net.Conn, early []byte, size int) *bufio.Reader {
	if len(early) == 0 {
		return bufio.NewReaderSize(conn, size)
	}
	return bufio.NewReaderSize(io.MultiReader(bytes.NewReader(early), conn), size)
}
