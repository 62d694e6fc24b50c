package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wstap/wstap/internal/procs"
)

// startUpstream starts this program again as the upstream child process
// (its own open-file limit, its own cores' worth of scheduling) and returns
// its address. Closing the returned stdin ends it.
func startUpstream(dir string) (addr string, cmd *exec.Cmd, stdin io.WriteCloser, err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, nil, fmt.Errorf("finding this program to run the upstream: %w", err)
	}
	cmd = exec.Command(self, "upstream", "127.0.0.1:0")
	logf, err := os.Create(filepath.Join(dir, "upstream.log"))
	if err != nil {
		return "", nil, nil, fmt.Errorf("creating upstream.log: %w", err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, nil, fmt.Errorf("upstream stdout: %w", err)
	}
	if stdin, err = cmd.StdinPipe(); err != nil {
		return "", nil, nil, fmt.Errorf("upstream stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", nil, nil, fmt.Errorf("starting the upstream: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		return "", nil, nil, fmt.Errorf("upstream did not say where it listens (%q, %v); see %s", line, err, logf.Name())
	}
	return addr, cmd, stdin, nil
}

// buildWstap builds ./cmd/wstap into dir.
func buildWstap(dir string) (string, error) {
	bin := filepath.Join(dir, "wstap")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/wstap")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build -o %s ./cmd/wstap (run wstap-soak from the module root): %w", bin, err)
	}
	return bin, nil
}

// proxyProc is the wstap proxy under test, a separate process.
type proxyProc struct {
	cmd     *exec.Cmd
	listen  string
	metrics string
	out     string // run dir
	exited  chan error
}

// startProxy runs 'wstap proxy' in front of upstream and waits until its
// metrics answer.
func startProxy(bin, dir, upstream string, pcap bool) (*proxyProc, error) {
	listen, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	metrics, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	p := &proxyProc{listen: listen, metrics: metrics, out: filepath.Join(dir, "run"), exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, "proxy", "--upstream", "ws://"+upstream, "--listen", listen, "--metrics", metrics,
		"--out", p.out, "--pcap="+strconv.FormatBool(pcap), "--header-timeout", "20s")
	logf, err := os.Create(filepath.Join(dir, "proxy.log"))
	if err != nil {
		return nil, fmt.Errorf("creating proxy.log: %w", err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s proxy: %w", bin, err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	for i := 0; i < 100; i++ {
		if _, err := p.scrape(); err == nil {
			return p, nil
		}
		select {
		case err := <-p.exited:
			return nil, fmt.Errorf("wstap proxy exited at start (%v); see %s", err, logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	p.cmd.Process.Kill()
	return nil, fmt.Errorf("wstap proxy metrics on %s did not answer within 10 s; see %s", metrics, logf.Name())
}

// scrape reads the proxy's Prometheus text into name{labels} → value.
func (p *proxyProc) scrape() (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.metrics+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", p.metrics, err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// loadAvg is the 1-minute load average of the host.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// stop sends SIGTERM and waits (at most wait) for the exit.
func (p *proxyProc) stop(wait time.Duration) (exitCode int, took time.Duration, err error) {
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return -1, 0, fmt.Errorf("signalling the proxy: %w", err)
	}
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), time.Since(start), nil
	case <-time.After(wait):
		p.cmd.Process.Kill()
		<-p.exited
		return -1, time.Since(start), fmt.Errorf("the proxy did not exit within %v of SIGTERM; killed", wait)
	}
}
