package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/wstap/wstap/capture/report"
	"golang.org/x/sys/unix"
)

func init() {
	register("doctor", "this host's limits: how many sessions it carries as a proxy and as a load client", runDoctor)
}

// Costs of a session, the figures doctor's capacities rest on.
const (
	// fdMargin is the descriptors a process keeps for itself: listeners,
	// run-dir files, DNS, the metrics endpoint.
	fdMargin = 64
	// proxyFDs: a proxied session holds the client's and the upstream's connection.
	proxyFDs = 2
	// proxySessionBytes is a wss↔wss session's memory with recording on, as
	// cmd/wstap-bench measured it (40.5 KiB RSS per idle session at 5,000,
	// README "Performance"); a ws↔ws session takes less.
	proxySessionBytes = 41 << 10
	// goodBacklog is the accept backlog under which a fast ramp sees SYN retries.
	goodBacklog = 4096
)

// hostReadings are this host's limits as doctor read them. A zero value is a
// reading that failed; Unread says which and why.
type hostReadings struct {
	// NofileSoft and NofileHard are RLIMIT_NOFILE as a process started from
	// this shell gets it (ulimit -Sn, ulimit -Hn).
	NofileSoft uint64 `json:"nofile_soft"`
	NofileHard uint64 `json:"nofile_hard"`
	FileMax    uint64 `json:"fs_file_max"`
	NrOpen     uint64 `json:"fs_nr_open"`
	// PortLow and PortHigh are net.ipv4.ip_local_port_range.
	PortLow    uint64 `json:"port_range_low"`
	PortHigh   uint64 `json:"port_range_high"`
	Somaxconn  uint64 `json:"somaxconn"`
	SynBacklog uint64 `json:"tcp_max_syn_backlog"`
	// ConntrackMax is nil when nf_conntrack is not loaded (no such bound).
	ConntrackMax    *uint64  `json:"conntrack_max"`
	MemAvailableKiB uint64   `json:"mem_available_kib"`
	Unread          []string `json:"unread,omitempty"`
}

// hostSource is where doctor reads: root holds proc/ ("/" on a real host,
// a directory of fake files in tests), nofile gives the open-file limits.
type hostSource struct {
	root   string
	nofile func() (soft, hard uint64, err error)
}

// thisHost reads the real /proc and the shell's open-file limits.
var thisHost = hostSource{root: "/", nofile: shellNofile}

// shellNofile returns the open-file limits a process started from this
// shell gets. Go raises its own soft limit to the hard limit at start but
// hands the original to its children, so a child shell reports it.
func shellNofile() (soft, hard uint64, err error) {
	out, err := exec.Command("/bin/sh", "-c", "ulimit -Sn; ulimit -Hn").Output()
	if f := strings.Fields(string(out)); err == nil && len(f) == 2 {
		soft, err1 := parseLimit(f[0])
		hard, err2 := parseLimit(f[1])
		if err1 == nil && err2 == nil {
			return soft, hard, nil
		}
	}
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, fmt.Errorf("RLIMIT_NOFILE: %w", err)
	}
	return r.Cur, r.Max, nil
}

func parseLimit(s string) (uint64, error) {
	if s == "unlimited" {
		return math.MaxInt64, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// readHost reads every limit doctor knows; a reading that fails is left
// zero and named in Unread with its file.
func readHost(src hostSource) hostReadings {
	var h hostReadings
	var err error
	if h.NofileSoft, h.NofileHard, err = src.nofile(); err != nil {
		h.Unread = append(h.Unread, "open-file limits: "+err.Error())
	}
	one := func(rel string, dst *uint64) {
		vals, err := readUints(src.root, rel)
		if err == nil && len(vals) != 1 {
			err = fmt.Errorf("%s: want one number, got %d", filepath.Join(src.root, rel), len(vals))
		}
		if err != nil {
			h.Unread = append(h.Unread, err.Error())
			return
		}
		*dst = vals[0]
	}
	one("proc/sys/fs/file-max", &h.FileMax)
	one("proc/sys/fs/nr_open", &h.NrOpen)
	one("proc/sys/net/core/somaxconn", &h.Somaxconn)
	one("proc/sys/net/ipv4/tcp_max_syn_backlog", &h.SynBacklog)
	if vals, err := readUints(src.root, "proc/sys/net/ipv4/ip_local_port_range"); err != nil || len(vals) != 2 || vals[0] > vals[1] {
		if err == nil {
			err = fmt.Errorf("%s: want two numbers, low and high", filepath.Join(src.root, "proc/sys/net/ipv4/ip_local_port_range"))
		}
		h.Unread = append(h.Unread, err.Error())
	} else {
		h.PortLow, h.PortHigh = vals[0], vals[1]
	}
	if vals, err := readUints(src.root, "proc/sys/net/netfilter/nf_conntrack_max"); err == nil && len(vals) == 1 {
		h.ConntrackMax = &vals[0]
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.Unread = append(h.Unread, err.Error())
	}
	if kib, err := memAvailable(filepath.Join(src.root, "proc/meminfo")); err != nil {
		h.Unread = append(h.Unread, err.Error())
	} else {
		h.MemAvailableKiB = kib
	}
	return h
}

// readUints reads the whitespace-separated numbers of a /proc file.
func readUints(root, rel string) ([]uint64, error) {
	name := filepath.Join(root, rel)
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var vals []uint64
	for _, f := range strings.Fields(string(b)) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", name, f)
		}
		vals = append(vals, v)
	}
	return vals, nil
}

// memAvailable returns MemAvailable of a meminfo file in KiB.
func memAvailable(name string) (uint64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			fs := strings.Fields(rest)
			if len(fs) == 2 && fs[1] == "kB" {
				if v, err := strconv.ParseUint(fs[0], 10, 64); err == nil {
					return v, nil
				}
			}
			return 0, fmt.Errorf("%s: unreadable MemAvailable line %q", name, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return 0, fmt.Errorf("%s: no MemAvailable line", name)
}

// bound is one limit on the sessions a role can carry.
type bound struct {
	Name     string `json:"name"`
	Sessions int64  `json:"sessions"`
	// Detail is the reading and the cost per session it was divided by.
	Detail string `json:"detail"`
	// Fits is set when a session count was asked for (--sessions).
	Fits *bool `json:"fits,omitempty"`
	// Raise holds the commands that raise this bound to the capacity's
	// RaiseTo sessions.
	Raise []string `json:"raise"`
	raise func(goal int64) []string
}

// capacity is what one role (proxy host, load client) can carry.
type capacity struct {
	Role     string  `json:"role"`
	Sessions int64   `json:"sessions"`
	Binding  string  `json:"binding"`
	Bounds   []bound `json:"bounds"`
	// Advice covers limits that slow a ramp without capping the count.
	Advice []string `json:"advice,omitempty"`
	Fits   *bool    `json:"fits,omitempty"`
	// RaiseTo is the session count the Raise commands aim at: the asked
	// count, or else the next bound's, where raising the binding one stops
	// paying; Next names that bound.
	RaiseTo int64  `json:"raise_to"`
	Next    string `json:"next,omitempty"`
}

// nofileRaise returns the commands that give a process need descriptors.
func nofileRaise(h hostReadings, need uint64, who string) []string {
	var out []string
	if need > h.NrOpen && h.NrOpen > 0 {
		out = append(out, fmt.Sprintf("sysctl -w fs.nr_open=%d   (the most any process may be given)", need))
	}
	if need <= h.NofileHard {
		out = append(out, fmt.Sprintf("ulimit -n %d   (in the shell that starts %s; no root needed, the hard limit is %d)", need, who, h.NofileHard))
		return out
	}
	return append(out,
		fmt.Sprintf("ulimit -n %d   (as root, in the shell that starts %s)", need, who),
		fmt.Sprintf("/etc/security/limits.conf:  * soft nofile %d  and  * hard nofile %d   (from the next login)", need, need),
		fmt.Sprintf("systemd unit [Service]:  LimitNOFILE=%d   (then systemctl daemon-reload and restart)", need))
}

// portRange is the size of the ephemeral port range.
func (h hostReadings) portRange() int64 {
	if h.PortHigh == 0 {
		return 0
	}
	return int64(h.PortHigh - h.PortLow + 1)
}

const widePorts = `sysctl -w net.ipv4.ip_local_port_range="1024 65535"`

// proxyCapacity is what this host carries as a wstap proxy host; asked > 0
// also says whether that many sessions fit and what to raise for them.
// wstap proxy raises its soft open-file limit to the hard limit itself.
func proxyCapacity(h hostReadings, asked int64) capacity {
	c := capacity{Role: "proxy host"}
	if h.NofileHard > 0 {
		c.Bounds = append(c.Bounds, bound{Name: "open files per process", Sessions: fdSessions(h.NofileHard, proxyFDs),
			Detail: fmt.Sprintf("hard limit %d (wstap proxy raises its soft limit to it); %d descriptors per session + %d", h.NofileHard, proxyFDs, fdMargin),
			raise:  func(goal int64) []string { return nofileRaise(h, uint64(goal*proxyFDs+fdMargin), "wstap proxy") }})
	}
	if h.FileMax > 0 {
		c.Bounds = append(c.Bounds, bound{Name: "open files system-wide", Sessions: fdSessions(h.FileMax, proxyFDs),
			Detail: fmt.Sprintf("fs.file-max %d, shared with every process on the host", h.FileMax),
			raise: func(goal int64) []string {
				return []string{fmt.Sprintf("sysctl -w fs.file-max=%d", goal*proxyFDs+fdMargin)}
			}})
	}
	if h.MemAvailableKiB > 0 {
		c.Bounds = append(c.Bounds, bound{Name: "memory", Sessions: int64(h.MemAvailableKiB<<10) / proxySessionBytes,
			Detail: fmt.Sprintf("MemAvailable %s at about %d KiB per wss session with recording", sizeKiB(h.MemAvailableKiB), proxySessionBytes>>10),
			raise: func(goal int64) []string {
				return []string{fmt.Sprintf("free or add memory (%s for %s sessions), or split the sessions over several proxies: 'wstap report DIR1 DIR2' merges their runs",
					sizeKiB(uint64(goal*proxySessionBytes>>10)), report.Thousands(goal))}
			}})
	}
	if n := h.portRange(); n > 0 {
		c.Bounds = append(c.Bounds, bound{Name: "ephemeral ports to one upstream address", Sessions: n,
			Detail: fmt.Sprintf("ip_local_port_range %d-%d: each session dials the upstream from one source port", h.PortLow, h.PortHigh),
			raise: func(goal int64) []string {
				var out []string
				if h.PortLow > 1024 || h.PortHigh < 65535 {
					out = append(out, widePorts)
				}
				if goal > 64512 {
					out = append(out, "beyond 64,512 sessions per upstream address: several upstream addresses, or several proxies")
				}
				return out
			}})
	}
	if h.ConntrackMax != nil {
		c.Bounds = append(c.Bounds, bound{Name: "conntrack table", Sessions: int64(*h.ConntrackMax) / proxyFDs,
			Detail: fmt.Sprintf("nf_conntrack_max %d, 2 connections per session, shared with the host", *h.ConntrackMax),
			raise: func(goal int64) []string {
				return []string{fmt.Sprintf("sysctl -w net.netfilter.nf_conntrack_max=%d", goal*proxyFDs)}
			}})
	}
	c.Advice = backlogAdvice(h)
	c.finish(asked)
	return c
}

// loadCapacity is what this host carries as a load client (wstap load,
// JMeter, k6): one descriptor and one source port per session.
func loadCapacity(h hostReadings, asked int64) capacity {
	c := capacity{Role: "load client"}
	if h.NofileSoft > 0 {
		d := fmt.Sprintf("soft limit %d; 1 descriptor per session + %d", h.NofileSoft, fdMargin)
		if h.NofileHard > h.NofileSoft {
			d += fmt.Sprintf(" (Go clients such as k6 and wstap load, and JMeter's JVM, raise it to the hard limit %d themselves)", h.NofileHard)
		}
		c.Bounds = append(c.Bounds, bound{Name: "open files per process", Sessions: fdSessions(h.NofileSoft, 1),
			Detail: d, raise: func(goal int64) []string { return nofileRaise(h, uint64(goal+fdMargin), "the load tool") }})
	}
	if h.FileMax > 0 {
		c.Bounds = append(c.Bounds, bound{Name: "open files system-wide", Sessions: fdSessions(h.FileMax, 1),
			Detail: fmt.Sprintf("fs.file-max %d, shared with every process on the host", h.FileMax),
			raise:  func(goal int64) []string { return []string{fmt.Sprintf("sysctl -w fs.file-max=%d", goal+fdMargin)} }})
	}
	if n := h.portRange(); n > 0 {
		c.Bounds = append(c.Bounds, bound{Name: "ephemeral ports per source IP", Sessions: n,
			Detail: fmt.Sprintf("ip_local_port_range %d-%d: one source port per session, per source IP and destination", h.PortLow, h.PortHigh),
			raise: func(goal int64) []string {
				var out []string
				spread := "spread"
				if h.PortLow > 1024 || h.PortHigh < 65535 {
					out = append(out, widePorts+"   (64,512 ports per source IP)")
					spread = "or keep the range and spread"
				}
				ips := max(2, (goal+n-1)/n)
				return append(out, fmt.Sprintf("%s the sessions over %d source IPs: wstap load --local-addrs %s (every 127.0.0.x is this host's loopback; on a NIC add addresses with 'ip addr add'; JMeter: one engine per IP)",
					spread, ips, localAddrs(ips)))
			}})
	}
	if h.ConntrackMax != nil {
		c.Bounds = append(c.Bounds, bound{Name: "conntrack table", Sessions: int64(*h.ConntrackMax),
			Detail: fmt.Sprintf("nf_conntrack_max %d, 1 connection per session, shared with the host", *h.ConntrackMax),
			raise: func(goal int64) []string {
				return []string{fmt.Sprintf("sysctl -w net.netfilter.nf_conntrack_max=%d", goal)}
			}})
	}
	c.finish(asked)
	return c
}

// localAddrs lists n loopback source addresses from 127.0.0.2 on.
func localAddrs(n int64) string {
	if n > 8 {
		return fmt.Sprintf("127.0.0.2,127.0.0.3,...,127.0.0.%d (%d addresses)", n+1, n)
	}
	a := make([]string, n)
	for i := range a {
		a[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	return strings.Join(a, ",")
}

func backlogAdvice(h hostReadings) []string {
	var out []string
	if h.Somaxconn > 0 && h.Somaxconn < goodBacklog {
		out = append(out, fmt.Sprintf("net.core.somaxconn %d caps the accept backlog: a fast ramp gets SYN retries (1 s, 3 s late sessions); sysctl -w net.core.somaxconn=%d", h.Somaxconn, goodBacklog))
	}
	if h.SynBacklog > 0 && h.SynBacklog < goodBacklog {
		out = append(out, fmt.Sprintf("net.ipv4.tcp_max_syn_backlog %d holds the half-open connections of a ramp; sysctl -w net.ipv4.tcp_max_syn_backlog=%d", h.SynBacklog, goodBacklog))
	}
	return out
}

// fdSessions is the sessions limit descriptors carry at per descriptors each.
func fdSessions(limit uint64, per int64) int64 {
	if limit > math.MaxInt64 {
		limit = math.MaxInt64
	}
	if limit <= fdMargin {
		return 0
	}
	return (int64(limit) - fdMargin) / per
}

// finish picks the binding bound, the count to raise to, and when
// asked > 0 marks what fits.
func (c *capacity) finish(asked int64) {
	c.Sessions = -1
	for _, b := range c.Bounds {
		if c.Sessions < 0 || b.Sessions < c.Sessions {
			c.Sessions, c.Binding = b.Sessions, b.Name
		}
	}
	if c.Sessions < 0 {
		c.Sessions, c.Binding = 0, "unknown (no limit could be read)"
	}
	c.RaiseTo = asked
	if asked <= 0 {
		c.RaiseTo = -1
		for _, b := range c.Bounds {
			if b.Name != c.Binding && (c.RaiseTo < 0 || b.Sessions < c.RaiseTo) {
				c.RaiseTo, c.Next = b.Sessions, b.Name
			}
		}
		if c.RaiseTo <= c.Sessions {
			c.RaiseTo, c.Next = 2*c.Sessions, ""
		}
	}
	for i := range c.Bounds {
		b := &c.Bounds[i]
		b.Raise = []string{}
		if b.Sessions < c.RaiseTo {
			b.Raise = b.raise(c.RaiseTo)
		}
		if asked > 0 {
			fits := b.Sessions >= asked
			b.Fits = &fits
		}
	}
	if asked > 0 {
		fits := c.Sessions >= asked
		c.Fits = &fits
	}
}

// doctorReport is 'wstap doctor --json'.
type doctorReport struct {
	Readings hostReadings `json:"readings"`
	Asked    int64        `json:"sessions_asked,omitempty"`
	Proxy    capacity     `json:"proxy"`
	Load     capacity     `json:"load_client"`
}

func diagnose(h hostReadings, asked int64) doctorReport {
	return doctorReport{Readings: h, Asked: asked, Proxy: proxyCapacity(h, asked), Load: loadCapacity(h, asked)}
}

// expectWarnings is 'wstap proxy --expect-sessions n': one line per bound of
// this host (with the proxy's own open-file limits soft, hard) that cannot
// carry n proxied sessions, with what to raise.
func expectWarnings(n int, soft, hard uint64) []string {
	src := thisHost
	src.nofile = func() (uint64, uint64, error) { return soft, max(soft, hard), nil }
	h := readHost(src)
	if soft < hard {
		h.NofileHard = soft // the raise failed: soft is what the proxy has
	}
	var out []string
	for _, b := range proxyCapacity(h, int64(n)).Bounds {
		if *b.Fits {
			continue
		}
		out = append(out, fmt.Sprintf("--expect-sessions %d: %s carries about %d proxied sessions (%s); raise: %s (see 'wstap doctor --sessions %d')",
			n, b.Name, b.Sessions, b.Detail, strings.Join(b.Raise, "; "), n))
	}
	return out
}

// writeText prints the report for a person.
func (r doctorReport) writeText(w io.Writer) {
	h := r.Readings
	fmt.Fprintln(w, "wstap doctor: this host's limits on WebSocket sessions")
	fmt.Fprintln(w, "\nReadings")
	row := func(name, val, src string) { fmt.Fprintf(w, "  %-24s %-28s %s\n", name, val, src) }
	row("open files", fmt.Sprintf("soft %s, hard %s", limitText(h.NofileSoft), limitText(h.NofileHard)), "ulimit -Sn, ulimit -Hn")
	row("fs.file-max", limitText(h.FileMax), "/proc/sys/fs/file-max")
	row("fs.nr_open", limitText(h.NrOpen), "/proc/sys/fs/nr_open")
	row("ephemeral ports", fmt.Sprintf("%d-%d (%s ports)", h.PortLow, h.PortHigh, report.Thousands(h.portRange())), "/proc/sys/net/ipv4/ip_local_port_range")
	row("net.core.somaxconn", limitText(h.Somaxconn), "/proc/sys/net/core/somaxconn")
	row("tcp_max_syn_backlog", limitText(h.SynBacklog), "/proc/sys/net/ipv4/tcp_max_syn_backlog")
	if h.ConntrackMax != nil {
		row("nf_conntrack_max", limitText(*h.ConntrackMax), "/proc/sys/net/netfilter/nf_conntrack_max")
	} else {
		row("nf_conntrack_max", "not loaded (no bound)", "/proc/sys/net/netfilter/nf_conntrack_max")
	}
	row("MemAvailable", sizeKiB(h.MemAvailableKiB), "/proc/meminfo")
	for _, u := range h.Unread {
		fmt.Fprintf(w, "  could not read: %s\n", u)
	}
	for _, c := range []capacity{r.Proxy, r.Load} {
		fmt.Fprintf(w, "\nAs a %s: about %s sessions, bound by %s\n", c.Role, report.Thousands(c.Sessions), c.Binding)
		for _, b := range c.Bounds {
			mark := "  "
			if b.Name == c.Binding {
				mark = "->"
			}
			if b.Fits != nil && !*b.Fits {
				mark = "!!"
			}
			fmt.Fprintf(w, "  %s %-40s %12s   %s\n", mark, b.Name, report.Thousands(b.Sessions), b.Detail)
		}
		for _, a := range c.Advice {
			fmt.Fprintf(w, "  note: %s\n", a)
		}
		if r.Asked > 0 {
			if *c.Fits {
				fmt.Fprintf(w, "  %s sessions fit.\n", report.Thousands(r.Asked))
				continue
			}
			fmt.Fprintf(w, "  %s sessions do NOT fit. Raise:\n", report.Thousands(r.Asked))
			for _, b := range c.Bounds {
				if !*b.Fits {
					fmt.Fprintf(w, "    %s (%s now):\n", b.Name, report.Thousands(b.Sessions))
					for _, cmd := range b.Raise {
						fmt.Fprintf(w, "      %s\n", cmd)
					}
				}
			}
			continue
		}
		for _, b := range c.Bounds {
			if b.Name == c.Binding {
				next := ""
				if c.Next != "" {
					next = ", where " + c.Next + " binds next"
				}
				fmt.Fprintf(w, "  To raise it to %s sessions%s ('--sessions N' aims at N):\n", report.Thousands(c.RaiseTo), next)
				for _, cmd := range b.Raise {
					fmt.Fprintf(w, "      %s\n", cmd)
				}
			}
		}
	}
	fmt.Fprintln(w, "\nA load client short of descriptors or ports fails like a platform limit: check it before blaming the platform.")
}

func limitText(v uint64) string {
	if v == 0 {
		return "?"
	}
	if v >= math.MaxInt64 {
		return "unlimited"
	}
	return report.Thousands(int64(v))
}

// sizeKiB formats a KiB figure as MiB or GiB.
func sizeKiB(kib uint64) string {
	switch {
	case kib == 0:
		return "?"
	case kib >= 1<<20:
		return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
	default:
		return fmt.Sprintf("%.0f MiB", float64(kib)/(1<<10))
	}
}

const doctorUsage = `Usage: wstap doctor [--sessions N] [--json]

Reads this host's limits on concurrent WebSocket sessions and prints how many
sessions it can carry as a proxy host (wstap proxy: 2 descriptors and about
41 KiB per wss session, one ephemeral port per session to one upstream
address) and as a load client (wstap load, JMeter, k6: 1 descriptor and one
ephemeral port per session per source IP), which limit binds, and the exact
ulimit, sysctl, limits.conf and systemd lines that raise it.

A load client that runs out of descriptors or ports fails near its limit in
a way that looks exactly like a platform limit: run this on every machine
of a load test, the load generators included.

Examples:
  wstap doctor                          the capacities and what binds them
  wstap doctor --sessions 5000          does 5,000 fit, and what to raise if not
  wstap doctor --sessions 50000 --json  the same as one JSON document

Readings: ulimit -Sn/-Hn, /proc/sys/fs/{file-max,nr_open},
/proc/sys/net/ipv4/ip_local_port_range, /proc/sys/net/core/somaxconn,
/proc/sys/net/ipv4/tcp_max_syn_backlog, /proc/sys/net/netfilter/nf_conntrack_max,
MemAvailable in /proc/meminfo.

Flags:
`

func runDoctor(args []string, stdout, stderr io.Writer) int {
	return doctor(args, stdout, stderr, thisHost)
}

func doctor(args []string, stdout, stderr io.Writer, src hostSource) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	sessions := fs.Int64("sessions", 0, "check whether this many concurrent `sessions` fit, and say what to raise")
	asJSON := fs.Bool("json", false, "print one JSON document instead of text")
	if code, ok := parseFlags(fs, "doctor", doctorUsage, args, stdout, stderr); !ok {
		return code
	}
	if *sessions < 0 {
		return usageError(stderr, "doctor", "--sessions %d: want a positive number", *sessions)
	}
	h := readHost(src)
	rep := diagnose(h, *sessions)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "wstap doctor: %v\n", err)
			return 1
		}
	} else {
		rep.writeText(stdout)
	}
	if len(h.Unread) > 0 && rep.Proxy.Bounds == nil && rep.Load.Bounds == nil {
		fmt.Fprintf(stderr, "wstap doctor: no limit could be read: %s\n", strings.Join(h.Unread, "; "))
		return 1
	}
	return 0
}
