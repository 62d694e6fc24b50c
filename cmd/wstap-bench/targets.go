package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/wstap/wstap/internal/procs"
)

// allTargets are what the harness can measure, in table order. wstap is
// wstap as a user runs it (full recording: events, sessions and a pcapng with
// payloads); wstap-nopcap is the same with --pcap=false.
var allTargets = []string{"direct", "wstap", "wstap-nopcap", "nginx", "haproxy", "mitmproxy"}

// tools are the programs each peer needs, with the Debian package holding them.
var tools = map[string]struct{ bin, pkg string }{
	"nginx":     {"nginx", "nginx-light"},
	"haproxy":   {"haproxy", "haproxy"},
	"mitmproxy": {"mitmdump", "mitmproxy"},
}

// ensureTool finds the target's program, installing its Debian package with
// apt-get when install is set. It returns the program path or why not.
func ensureTool(target string, install bool, log func(string, ...any)) (string, error) {
	t, ok := tools[target]
	if !ok {
		return "", nil
	}
	if p, err := exec.LookPath(t.bin); err == nil {
		return p, nil
	}
	if !install {
		return "", fmt.Errorf("%s not found (apt-get install -y %s, or run with --install)", t.bin, t.pkg)
	}
	log("installing %s with apt-get", t.pkg)
	cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", t.pkg)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get install %s: %v: %s", t.pkg, err, lastLine(out))
	}
	p, err := exec.LookPath(t.bin)
	if err != nil {
		return "", fmt.Errorf("%s not found after installing %s", t.bin, t.pkg)
	}
	return p, nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// job is one target started for one work: a fresh echo server and, unless
// direct, a fresh proxy in front of it.
type job struct {
	target string
	url    string
	echo   *proc
	proxy  *proc
	dir    string
	// profile is where the in-process wstap writes its profiles (--profile).
	profile string
}

// startJob starts the echo server and the target's proxy.
func (e *runEnv) startJob(ctx context.Context, target string) (*job, error) {
	j, echoAddr, err := e.startEcho(ctx, target)
	if err != nil {
		return nil, err
	}
	if target == "direct" {
		j.url = "wss://" + echoAddr + "/"
		return j, nil
	}
	listen, err := procs.FreeAddr()
	if err != nil {
		j.stop()
		return nil, err
	}
	j.url = "wss://" + listen + "/"
	err = e.startProxy(j, listen, echoAddr)
	if err == nil {
		err = waitListening(ctx, j.proxy, listen, 30*time.Second)
	}
	if err != nil {
		j.stop()
		return nil, err
	}
	return j, nil
}

// startEcho makes the job's directory and starts its echo server; it
// returns the job and the echo server's address once it listens.
func (e *runEnv) startEcho(ctx context.Context, target string) (*job, string, error) {
	e.seq++
	dir := filepath.Join(e.tmp, fmt.Sprintf("%03d-%s", e.seq, target))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("creating %s: %w", dir, err)
	}
	j := &job{target: target, dir: dir}
	echoAddr, err := procs.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	j.echo, err = startProc("echo server", filepath.Join(dir, "echo.log"), nil, e.self,
		"echo", "--listen", echoAddr, "--cert", e.certs.Cert, "--key", e.certs.Key)
	if err != nil {
		return nil, "", err
	}
	if err := waitListening(ctx, j.echo, echoAddr, 10*time.Second); err != nil {
		j.stop()
		return nil, "", err
	}
	return j, echoAddr, nil
}

// startProxy starts the job's proxy on listen in front of echoAddr.
func (e *runEnv) startProxy(j *job, listen, echoAddr string) error {
	target, dir := j.target, j.dir
	vars := map[string]string{"Dir": dir, "Listen": listen, "Upstream": echoAddr, "CA": e.certs.CA,
		"Cert": e.certs.Cert, "Key": e.certs.Key, "Combined": e.certs.Combined}
	logPath := filepath.Join(dir, target+".log")
	var err error
	switch target {
	case "wstap", "wstap-nopcap":
		err = e.startWstap(j, logPath, listen, echoAddr)
	case "nginx":
		for _, d := range []string{"body", "proxy", "fastcgi", "uwsgi", "scgi"} {
			os.MkdirAll(filepath.Join(dir, d), 0o755)
		}
		conf := filepath.Join(dir, "nginx.conf")
		if err = e.render("nginx.conf", conf, vars); err == nil {
			j.proxy, err = startProc(target, logPath, nil, e.bins[target], "-e", filepath.Join(dir, "nginx-error.log"),
				"-p", dir, "-c", conf)
		}
	case "haproxy":
		conf := filepath.Join(dir, "haproxy.cfg")
		if err = e.render("haproxy.cfg", conf, vars); err == nil {
			j.proxy, err = startProc(target, logPath, nil, e.bins[target], "-db", "-f", conf)
		}
	case "mitmproxy":
		host, port, _ := strings.Cut(listen, ":")
		os.MkdirAll(filepath.Join(dir, "mitm"), 0o755)
		j.proxy, err = startProc(target, logPath, nil, e.bins[target], "-q",
			"--mode", "reverse:https://"+echoAddr, "--listen-host", host, "--listen-port", port,
			"--set", "confdir="+filepath.Join(dir, "mitm"), "--certs", "*="+e.certs.Combined,
			"--set", "ssl_verify_upstream_trusted_ca="+e.certs.CA, "--set", "connection_strategy=lazy")
	default:
		err = fmt.Errorf("unknown target %q (want one of %s)", target, strings.Join(allTargets, ","))
	}
	return err
}

// startWstap starts wstap as 'wstap proxy --tls --upstream' (with
// --pcap=false for wstap-nopcap), or in-process with profiles (--profile).
func (e *runEnv) startWstap(j *job, logPath, listen, echoAddr string) error {
	args := []string{"proxy", "--upstream", "wss://" + echoAddr, "--tls", "--listen", listen,
		"--out", filepath.Join(j.dir, "run"), "--ca-dir", e.wstapCA, "--upstream-ca", e.certs.CA}
	if j.target == "wstap-nopcap" {
		args = append(args, "--pcap=false")
	}
	var err error
	if e.profile == "" {
		j.proxy, err = startProc(j.target, logPath, e.wstapEnv, e.wstapBin, args...)
		return err
	}
	j.profile = filepath.Join(e.profile, filepath.Base(j.dir))
	os.MkdirAll(j.profile, 0o755)
	args = append(append([]string{"wstap-inproc"}, args[1:]...), "--profile", j.profile)
	j.proxy, err = startProc(j.target, logPath, e.wstapEnv, e.self, args...)
	return err
}

// render fills testdata/bench/name with vars into path.
func (e *runEnv) render(name, path string, vars map[string]string) error {
	src := filepath.Join(e.repo, "testdata", "bench", name)
	t, err := template.ParseFiles(src)
	if err != nil {
		return fmt.Errorf("reading config template %s: %w", src, err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer f.Close()
	t.Option("missingkey=error")
	if err := t.Execute(f, vars); err != nil {
		return fmt.Errorf("filling %s: %w", src, err)
	}
	return nil
}

// rss reads the proxy's memory, summed over its worker processes.
func (j *job) rss() (int64, error) {
	if j.proxy == nil {
		return 0, fmt.Errorf("direct has no proxy")
	}
	v, err := treeRSS(j.proxy.cmd.Process.Pid)
	if j.profile != "" {
		j.proxy.cmd.Process.Signal(syscall.SIGUSR1) // heap profile, sessions held
	}
	return v, err
}

// stop ends the proxy (wstap flushes its recording) and the echo server, and
// returns the bytes wstap's run dir held.
func (j *job) stop() int64 {
	j.proxy.stop(30 * time.Second)
	j.echo.stop(5 * time.Second)
	var size int64
	run := filepath.Join(j.dir, "run")
	filepath.Walk(run, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	os.RemoveAll(run)
	return size
}

// cpu returns a reader of the proxy's CPU seconds, nil for direct.
func (j *job) cpu() func() (float64, error) {
	if j.proxy == nil {
		return nil
	}
	return func() (float64, error) { return treeCPU(j.proxy.cmd.Process.Pid) }
}
