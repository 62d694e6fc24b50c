package platform

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/gorilla/websocket"
)

func TestFaultsOnRequest(t *testing.T) {
	p := start(t, Config{Faults: true})
	for _, tc := range []struct {
		kind  string
		check func(error) bool
		want  string
	}{
		{FaultRST, func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }, "a connection reset"},
		{FaultFIN, func(err error) bool {
			var ce *websocket.CloseError
			return errors.As(err, &ce) && ce.Code == websocket.CloseAbnormalClosure
		}, "1006, no close frame"},
		{FaultMalformed, func(err error) bool {
			return err != nil && (strings.Contains(err.Error(), "RSV1 set") || strings.Contains(err.Error(), "bad opcode"))
		}, "gorilla refusing a reserved opcode or RSV1"},
	} {
		c := dial(t, p)
		// An echo queued before the fault still arrives first.
		c.WriteMessage(websocket.TextMessage, []byte("before"))
		c.WriteMessage(websocket.TextMessage, []byte(FaultPrefix+tc.kind))
		if _, got, err := c.ReadMessage(); err != nil || string(got) != "before" {
			t.Fatalf("%s: first read %q, %v; want the echo of before", tc.kind, got, err)
		}
		if err, _ := waitEnd(t, c); !tc.check(err) {
			t.Errorf("%s: session ended with %v, want %s", tc.kind, err, tc.want)
		}
	}
	if n := p.Stats().Faults; n != 3 {
		t.Errorf("%d faults counted, want 3", n)
	}
}

func TestFaultMessageEchoedWhenFaultsOff(t *testing.T) {
	c := dial(t, start(t, Config{}))
	c.WriteMessage(websocket.TextMessage, []byte(FaultPrefix+FaultRST))
	if _, got, err := c.ReadMessage(); err != nil || string(got) != FaultPrefix+FaultRST {
		t.Fatalf("read %q, %v; want the message echoed", got, err)
	}
}
