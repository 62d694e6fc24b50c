package testkit

import (
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Habits are the ways a real chat platform ends sessions without a close
// frame, each acting on its own variable, so the causes analysis can be tried
// with several at once. A gorilla/websocket server plays the platform.
type Habits struct {
	// Cap drops (or, with CapStatus, refuses) a session that opens while Cap
	// sessions are open; CapCredential limits the cap to the sessions whose
	// Authorization is that value (a per-token cap).
	Cap           int
	CapCredential string
	// CapStatus, when set, answers the upgrade with that status instead of
	// resetting the session CapDelay after its 101.
	CapStatus int
	CapDelay  time.Duration
	// IdleTimeout drops a session whose client sent no data frame and no
	// ping for that long; its pongs do not count.
	IdleTimeout time.Duration
	// PingEvery sends pings; PingTimeout drops a session whose oldest ping
	// has waited that long for its pong.
	PingEvery, PingTimeout time.Duration
	// Lifetime drops every session at that age.
	Lifetime time.Duration
}

// HabitsServer starts a platform with those habits on loopback and returns
// its ws:// URL. Drops are a TCP FIN (a RST for the cap), never a close frame.
func HabitsServer(t testing.TB, h Habits) string {
	t.Helper()
	p := &habitsPlatform{h: h, open: map[string]int{}}
	up := &websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(up, w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "ws://" + ln.Addr().String() + "/chat"
}

type habitsPlatform struct {
	h    Habits
	mu   sync.Mutex
	open map[string]int // open sessions by credential; "" counts all
}

// admit counts a new session in and says whether the cap lets it live.
func (p *habitsPlatform) admit(cred string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	capped := p.h.Cap > 0 && (p.h.CapCredential == "" || p.h.CapCredential == cred)
	key := ""
	if p.h.CapCredential != "" {
		key = cred
	}
	if capped && p.open[key] >= p.h.Cap {
		return false
	}
	p.open[key]++
	return true
}

func (p *habitsPlatform) leave(cred string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := ""
	if p.h.CapCredential != "" {
		key = cred
	}
	p.open[key]--
}

func (p *habitsPlatform) serve(up *websocket.Upgrader, w http.ResponseWriter, r *http.Request) {
	cred := r.Header.Get("Authorization")
	ok := p.admit(cred)
	if !ok && p.h.CapStatus != 0 {
		http.Error(w, "too many sessions", p.h.CapStatus)
		return
	}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		if ok {
			p.leave(cred)
		}
		return
	}
	if !ok {
		time.Sleep(max(p.h.CapDelay, time.Millisecond))
		if tc, isTCP := c.UnderlyingConn().(*net.TCPConn); isTCP {
			tc.SetLinger(0) // RST
		}
		c.UnderlyingConn().Close()
		return
	}
	defer p.leave(cred)
	(&habitsSession{h: p.h, c: c, born: time.Now()}).run()
}

// habitsSession is one session on the platform: a reader that notes the
// client's activity and pongs, and a ticker that pings and applies the timers.
type habitsSession struct {
	h    Habits
	c    *websocket.Conn
	born time.Time

	mu          sync.Mutex
	lastClient  time.Time   // last data frame or ping from the client
	pendingPing []time.Time // pings sent and not answered, oldest first
}

func (s *habitsSession) run() {
	s.lastClient = s.born
	s.c.SetPingHandler(func(data string) error {
		s.touch()
		return s.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	s.c.SetPongHandler(func(string) error {
		s.mu.Lock()
		if len(s.pendingPing) > 0 {
			s.pendingPing = s.pendingPing[1:]
		}
		s.mu.Unlock()
		return nil
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			op, msg, err := s.c.ReadMessage()
			if err != nil {
				return
			}
			s.touch()
			s.c.WriteMessage(op, msg) // echo; the ticker writes only control frames
		}
	}()
	s.tick(done)
	s.c.UnderlyingConn().Close() // a FIN, no close frame
	<-done
}

func (s *habitsSession) touch() {
	s.mu.Lock()
	s.lastClient = time.Now()
	s.mu.Unlock()
}

// tick applies the timers every 10 ms until one fires or the client leaves.
func (s *habitsSession) tick(done chan struct{}) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	nextPing := s.born.Add(s.h.PingEvery)
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			s.mu.Lock()
			expired := s.h.IdleTimeout > 0 && now.Sub(s.lastClient) >= s.h.IdleTimeout ||
				s.h.PingTimeout > 0 && len(s.pendingPing) > 0 && now.Sub(s.pendingPing[0]) >= s.h.PingTimeout ||
				s.h.Lifetime > 0 && now.Sub(s.born) >= s.h.Lifetime
			if !expired && s.h.PingEvery > 0 && !now.Before(nextPing) {
				s.pendingPing = append(s.pendingPing, now)
				s.c.WriteControl(websocket.PingMessage, []byte("hb"), now.Add(time.Second))
				nextPing = nextPing.Add(s.h.PingEvery)
			}
			s.mu.Unlock()
			if expired {
				return
			}
		}
	}
}
