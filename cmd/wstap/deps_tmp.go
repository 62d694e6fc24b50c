//go:build tools

// Package main pins the modules wstap depends on until each is imported by real code.
package main

import (
	_ "github.com/coder/websocket"
	_ "github.com/gobwas/httphead"
	_ "github.com/gobwas/ws"
	_ "github.com/google/gopacket/pcapgo"
	_ "github.com/gorilla/websocket"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rs/zerolog"
	_ "github.com/schollz/progressbar/v3"
	_ "go.uber.org/goleak"
	_ "golang.org/x/sys/unix"
	_ "software.sslmate.com/src/go-pkcs12"
)
