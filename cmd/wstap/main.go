// Command wstap is a transparent WebSocket diagnostic proxy: it relays every
// frame byte for byte and writes down why each session ended.
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. run returns the exit code: 0 ok, 1 runtime
// failure, 2 usage error (docs/records.md, "The run dir").
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

// register adds a subcommand; each subcommand's file calls it from init.
func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	commands[name] = command{name: name, summary: summary, run: run}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "wstap: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `wstap — a transparent WebSocket diagnostic proxy that tells why sessions end with 1006.

Examples:
  wstap demo                                         the whole story on a built-in platform
  wstap proxy --upstream wss://chat.example.com      reverse mode on 127.0.0.1:8080
  wstap proxy --listen 127.0.0.1:8080                forward mode: jmeter -H 127.0.0.1 -P 8080
  wstap ca export --format p12 --out wstap-ca.p12    a Java trust store (password changeit)
  wstap report wstap-runs/20261128T101500Z           summary and report.html
  wstap bundle wstap-runs/20261128T101500Z -o evidence.tar.gz
  wstap load --url wss://127.0.0.1:8443/chat --sessions 1000 --ping 20s
  wstap plan chat.jmx --idle 60s                     check a JMeter plan's keep-alive and answers to pings

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'wstap COMMAND --help' for a command's flags and examples.")
}

// usageError prints a usage error naming what is at fault and returns 2.
func usageError(stderr io.Writer, cmd, format string, a ...any) int {
	fmt.Fprintf(stderr, "wstap %s: %s\n", cmd, strings.TrimSpace(fmt.Sprintf(format, a...)))
	fmt.Fprintf(stderr, "Run 'wstap %s --help' for usage.\n", cmd)
	return 2
}
