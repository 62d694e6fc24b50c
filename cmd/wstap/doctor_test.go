package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost writes /proc files under a temp root; an empty value leaves the
// file out.
func fakeHost(t *testing.T, soft, hard uint64, files map[string]string) hostSource {
	t.Helper()
	root := t.TempDir()
	for rel, v := range files {
		if v == "" {
			continue
		}
		name := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return hostSource{root: root, nofile: func() (uint64, uint64, error) { return soft, hard, nil }}
}

// smallHost is a default Debian box with a 1 GiB of free memory and a
// shell at ulimit -n 1024, hard 4096.
func smallHost(over map[string]string) map[string]string {
	m := map[string]string{
		"proc/sys/fs/file-max":                    "100000\n",
		"proc/sys/fs/nr_open":                     "1048576\n",
		"proc/sys/net/ipv4/ip_local_port_range":   "32768\t60999\n",
		"proc/sys/net/core/somaxconn":             "128\n",
		"proc/sys/net/ipv4/tcp_max_syn_backlog":   "128\n",
		"proc/sys/net/netfilter/nf_conntrack_max": "65536\n",
		"proc/meminfo":                            "MemTotal:        2097152 kB\nMemFree:          500000 kB\nMemAvailable:    1048576 kB\n",
	}
	for k, v := range over {
		m[k] = v
	}
	return m
}

func runDoctorOn(t *testing.T, src hostSource, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := doctor(args, &out, &errb, src)
	return code, out.String(), errb.String()
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// TestDoctorSmallHost: the figures and the binding bound of each role on a
// host with ulimit -n 1024 (hard 4096) and 1 GiB free.
func TestDoctorSmallHost(t *testing.T) {
	code, out, errOut := runDoctorOn(t, fakeHost(t, 1024, 4096, smallHost(nil)))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	wantLines(t, out,
		"soft 1,024, hard 4,096",
		"32768-60999 (28,232 ports)",
		"1.0 GiB",
		// (4096-64)/2 descriptors; 1 GiB / 41 KiB = 25,575 by memory.
		"As a proxy host: about 2,016 sessions, bound by open files per process",
		"25,575   MemAvailable 1.0 GiB at about 41 KiB",
		"32,768   nf_conntrack_max 65536, 2 connections per session",
		// 1024-64 descriptors, raised to the hard limit without root.
		"As a load client: about 960 sessions, bound by open files per process",
		"raise it to the hard limit 4096 themselves",
		"net.core.somaxconn 128 caps the accept backlog",
		"sysctl -w net.core.somaxconn=4096",
		"sysctl -w net.ipv4.tcp_max_syn_backlog=4096",
		// Without --sessions the proxy aims at the next bound: memory.
		"To raise it to 25,575 sessions, where memory binds next",
		"ulimit -n 51214   (as root, in the shell that starts wstap proxy)",
		"* soft nofile 51214  and  * hard nofile 51214",
		"LimitNOFILE=51214",
		// The load client aims at its next bound: the 28,232 ports.
		"ulimit -n 28296   (as root, in the shell that starts the load tool)")
}

// TestDoctorSessionsFit: --sessions says what fits and what to raise for
// exactly that count.
func TestDoctorSessionsFit(t *testing.T) {
	src := fakeHost(t, 1024, 4096, smallHost(nil))
	code, out, _ := runDoctorOn(t, src, "--sessions", "1500")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantLines(t, out, "1,500 sessions fit.", "1,500 sessions do NOT fit. Raise:",
		"ulimit -n 1564   (in the shell that starts the load tool; no root needed, the hard limit is 4096)")
	if strings.Contains(out, "LimitNOFILE") {
		t.Error("1,500 proxied sessions fit in 4,096 descriptors, yet a raise is proposed for the proxy")
	}

	_, out, _ = runDoctorOn(t, src, "--sessions", "40000")
	wantLines(t, out,
		"40,000 sessions do NOT fit",
		"ulimit -n 80064   (as root, in the shell that starts wstap proxy)",
		"LimitNOFILE=80064",
		`sysctl -w net.ipv4.ip_local_port_range="1024 65535"`,
		"sysctl -w net.netfilter.nf_conntrack_max=80000",
		"free or add memory (1.6 GiB for 40,000 sessions)",
		"or keep the range and spread the sessions over 2 source IPs: wstap load --local-addrs 127.0.0.2,127.0.0.3")

	_, out, _ = runDoctorOn(t, fakeHost(t, 1<<20, 1<<20, smallHost(map[string]string{"proc/meminfo": "MemAvailable: 8388608000 kB\n",
		"proc/sys/fs/file-max": "3000000", "proc/sys/net/netfilter/nf_conntrack_max": "9000000"})), "--sessions", "2000000")
	wantLines(t, out,
		"sysctl -w fs.nr_open=4000064   (the most any process may be given)",
		"sysctl -w fs.file-max=4000064",
		"beyond 64,512 sessions per upstream address",
		"spread the sessions over 71 source IPs: wstap load --local-addrs 127.0.0.2,127.0.0.3,...,127.0.0.72 (71 addresses)")
}

// TestDoctorOtherBindings: memory binds a proxy with plenty of descriptors,
// the port range a load client; without nf_conntrack there is no such bound.
func TestDoctorOtherBindings(t *testing.T) {
	src := fakeHost(t, 1<<20, 1<<20, smallHost(map[string]string{
		"proc/meminfo":                            "MemAvailable:      65536 kB\n",
		"proc/sys/net/ipv4/ip_local_port_range":   "60000 60999",
		"proc/sys/net/netfilter/nf_conntrack_max": "",
	}))
	_, out, _ := runDoctorOn(t, src)
	wantLines(t, out,
		"As a proxy host: about 1,000 sessions, bound by ephemeral ports to one upstream address",
		"As a load client: about 1,000 sessions, bound by ephemeral ports per source IP",
		"not loaded (no bound)")
	if strings.Contains(out, "conntrack table") {
		t.Error("a conntrack bound without nf_conntrack_max")
	}
	src = fakeHost(t, 1<<20, 1<<20, smallHost(map[string]string{"proc/meminfo": "MemAvailable:      65536 kB\n"}))
	_, out, _ = runDoctorOn(t, src)
	wantLines(t, out, "As a proxy host: about 1,598 sessions, bound by memory", // 64 MiB / 41 KiB
		"free or add memory (", "'wstap report DIR1 DIR2' merges their runs")
}

// TestDoctorJSON: --json carries the readings, both capacities and the
// verdict on --sessions.
func TestDoctorJSON(t *testing.T) {
	code, out, _ := runDoctorOn(t, fakeHost(t, 1024, 4096, smallHost(nil)), "--json", "--sessions", "1500")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var rep struct {
		Readings struct {
			NofileSoft   uint64  `json:"nofile_soft"`
			PortLow      uint64  `json:"port_range_low"`
			ConntrackMax *uint64 `json:"conntrack_max"`
			MemKiB       uint64  `json:"mem_available_kib"`
		} `json:"readings"`
		Asked int64 `json:"sessions_asked"`
		Proxy struct {
			Sessions int64  `json:"sessions"`
			Binding  string `json:"binding"`
			Fits     *bool  `json:"fits"`
			Bounds   []struct {
				Name  string   `json:"name"`
				Fits  *bool    `json:"fits"`
				Raise []string `json:"raise"`
			} `json:"bounds"`
		} `json:"proxy"`
		Load struct {
			Sessions int64 `json:"sessions"`
			Fits     *bool `json:"fits"`
		} `json:"load_client"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	r := rep.Readings
	if r.NofileSoft != 1024 || r.PortLow != 32768 || r.ConntrackMax == nil || *r.ConntrackMax != 65536 || r.MemKiB != 1048576 {
		t.Errorf("readings %+v", r)
	}
	if rep.Asked != 1500 || rep.Proxy.Sessions != 2016 || rep.Proxy.Binding != "open files per process" || rep.Load.Sessions != 960 {
		t.Errorf("asked %d, proxy %d by %q, load %d", rep.Asked, rep.Proxy.Sessions, rep.Proxy.Binding, rep.Load.Sessions)
	}
	if rep.Proxy.Fits == nil || !*rep.Proxy.Fits || rep.Load.Fits == nil || *rep.Load.Fits {
		t.Errorf("fits: proxy %v, load %v; want true, false", rep.Proxy.Fits, rep.Load.Fits)
	}
	for _, b := range rep.Proxy.Bounds {
		if b.Fits == nil || !*b.Fits || b.Raise == nil || len(b.Raise) != 0 {
			t.Errorf("proxy bound %q: fits %v, raise %q; want true and []", b.Name, b.Fits, b.Raise)
		}
	}
}

// TestDoctorUnreadable: missing or malformed files are named; with nothing
// readable the exit code is 1.
func TestDoctorUnreadable(t *testing.T) {
	src := fakeHost(t, 1024, 4096, smallHost(map[string]string{
		"proc/sys/net/core/somaxconn": "many\n",
		"proc/meminfo":                "MemTotal: 1 kB\n",
	}))
	code, out, _ := runDoctorOn(t, src)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	wantLines(t, out, "could not read: "+filepath.Join(src.root, "proc/sys/net/core/somaxconn")+`: "many" is not a number`,
		"could not read: "+filepath.Join(src.root, "proc/meminfo")+": no MemAvailable line")

	empty := hostSource{root: t.TempDir(), nofile: func() (uint64, uint64, error) { return 0, 0, errors.New("no rlimit") }}
	code, out, errOut := runDoctorOn(t, empty)
	if code != 1 || !strings.Contains(errOut, "no limit could be read") || !strings.Contains(errOut, "proc/sys/fs/file-max") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	wantLines(t, out, "bound by unknown (no limit could be read)")
}

// TestDoctorUsage: --help shows examples; bad flags are usage errors.
func TestDoctorUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"doctor", "--help"}, &out, &errb); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
	wantLines(t, out.String(), "Examples:", "wstap doctor --sessions 5000", "-json", "-sessions")
	for _, args := range [][]string{{"--sessions", "-5"}, {"--sessions", "many"}, {"extra"}} {
		errb.Reset()
		if code := run(append([]string{"doctor"}, args...), &out, &errb); code != 2 || !strings.Contains(errb.String(), "wstap doctor: ") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errb.String())
		}
	}
}

// TestDoctorThisHost runs doctor on this machine's real /proc.
func TestDoctorThisHost(t *testing.T) {
	code, out, errOut := runDoctorOn(t, thisHost)
	t.Logf("\n%s", out)
	if code != 0 || strings.Contains(out, "could not read") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	h := readHost(thisHost)
	if h.NofileSoft == 0 || h.NofileHard < h.NofileSoft || h.PortHigh <= h.PortLow || h.MemAvailableKiB == 0 || h.Somaxconn == 0 {
		t.Errorf("readings %+v", h)
	}
}

// TestExpectSessionsWarning: the proxy's start warning names the open-file
// bound and the command for exactly the sessions asked, and stays quiet when
// they fit.
func TestExpectSessionsWarning(t *testing.T) {
	w := expectWarnings(1000, 100, 100)
	if len(w) != 1 || !strings.Contains(w[0], "--expect-sessions 1000: open files per process carries about 18 proxied sessions") ||
		!strings.Contains(w[0], "ulimit -n 2064") || !strings.Contains(w[0], "wstap doctor --sessions 1000") {
		t.Errorf("warnings %q", w)
	}
	if w := expectWarnings(10, 1000, 1000); len(w) != 0 {
		t.Errorf("10 sessions in 1,000 descriptors: warnings %q", w)
	}
}

// TestProxyExpectSessions: 'wstap proxy --expect-sessions' beyond this
// host's open-file limit warns at start with the command to raise it.
func TestProxyExpectSessions(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	const n = 1 << 30 // more than any host's nr_open
	r, err := startProxy(&proxyOptions{listen: "127.0.0.1:0", upstream: "ws://127.0.0.1:1", out: dir,
		caDir: filepath.Join(dir, "ca"), expectSessions: n}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	out := stderr.String()
	wantLines(t, out, "wstap: WARNING: --expect-sessions 1073741824: open files per process carries about",
		"ulimit -n 2147483712", "LimitNOFILE=2147483712", "see 'wstap doctor --sessions 1073741824'")
}
