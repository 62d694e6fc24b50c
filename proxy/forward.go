package proxy

import "net"

// serveForward handles a connection in forward mode (an HTTP proxy).
func (s *Server) serveForward(raw net.Conn) {
	s.serveRequests(raw, raw, target{}, nil)
}
