package testkit

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Client is how a gorilla/websocket client behaves in a causes test.
type Client struct {
	// Authorization is sent with the upgrade when set.
	Authorization string
	// SendEvery sends a text message that often; 0 sends none.
	SendEvery time.Duration
	// PongDelay answers the platform's pings that late; negative never.
	PongDelay time.Duration
	// Hold closes the session cleanly after that long, if it still lives.
	Hold time.Duration
}

// Outcome is what the client saw: 101 or not, and the close code it reports
// (1006 when the TCP connection ended without a close frame).
type Outcome struct {
	Status int
	Code   int
}

// Run dials url, behaves as c says, and returns what it saw.
func (c Client) Run(url string) Outcome {
	h := http.Header{}
	if c.Authorization != "" {
		h.Set("Authorization", c.Authorization)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		if resp != nil {
			return Outcome{Status: resp.StatusCode}
		}
		return Outcome{}
	}
	defer conn.Close()
	var wmu sync.Mutex // gorilla allows one writer of data frames at a time
	conn.SetPingHandler(func(data string) error {
		if c.PongDelay < 0 {
			return nil
		}
		go func() {
			time.Sleep(c.PongDelay)
			conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		}()
		return nil
	})
	stop := make(chan struct{})
	defer close(stop)
	if c.SendEvery > 0 {
		go func() {
			t := time.NewTicker(c.SendEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					wmu.Lock()
					conn.WriteMessage(websocket.TextMessage, []byte("hello"))
					wmu.Unlock()
				}
			}
		}()
	}
	ended := make(chan int, 1)
	go func() {
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				code := websocket.CloseAbnormalClosure
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				ended <- code
				return
			}
		}
	}()
	select {
	case code := <-ended:
		return Outcome{Status: 101, Code: code}
	case <-time.After(c.Hold):
	}
	wmu.Lock()
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	wmu.Unlock()
	select {
	case code := <-ended:
		return Outcome{Status: 101, Code: code}
	case <-time.After(2 * time.Second):
		return Outcome{Status: 101, Code: -1}
	}
}
