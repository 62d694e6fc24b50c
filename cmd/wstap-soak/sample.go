package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/wstap/wstap/internal/procs"
)

// sample is one look at the proxy.
type sample struct {
	at         time.Duration // since the start
	when       time.Time
	rss        int64
	goroutines int64
	active     int64 // wstap_sessions_active
	clientOpen int64 // sessions the clients hold open
	ended      int64 // sessions ended, all verdicts
	load       string
	err        string
}

// spare is the goroutines beyond two per open session.
func (s sample) spare() int64 { return s.goroutines - 2*s.active }

// sampler samples the proxy every interval.
type sampler struct {
	px      *proxyProc
	fl      *fleet
	begin   time.Time
	mu      sync.Mutex
	samples []sample
}

// loop samples every interval until ctx ends, printing each sample.
func (s *sampler) loop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sm := s.take()
			fmt.Printf("sample %s\n", sm.row())
		}
	}
}

// take samples now and keeps the sample.
func (s *sampler) take() sample {
	sm := s.peek()
	s.keep(sm)
	return sm
}

// keep adds sm to the samples.
func (s *sampler) keep(sm sample) {
	s.mu.Lock()
	s.samples = append(s.samples, sm)
	s.mu.Unlock()
}

// peek samples now.
func (s *sampler) peek() sample {
	sm := sample{at: time.Since(s.begin), when: time.Now(), clientOpen: s.fl.open.Load(), load: loadAvg()}
	rss, err := procs.RSS(s.px.cmd.Process.Pid)
	if err != nil {
		sm.err = err.Error()
	}
	sm.rss = rss
	m, err := s.px.scrape()
	if err != nil {
		sm.err = err.Error()
	}
	sm.goroutines, sm.active = int64(m["go_goroutines"]), int64(m["wstap_sessions_active"])
	for k, v := range m {
		if len(k) > len("wstap_sessions_ended_total") && k[:len("wstap_sessions_ended_total")] == "wstap_sessions_ended_total" {
			sm.ended += int64(v)
		}
	}
	return sm
}

func (sm sample) row() string {
	return fmt.Sprintf("%7s %9.1f %10d %8d %8d %8d %9d %6s %s", sm.at.Round(time.Second), float64(sm.rss)/(1<<20),
		sm.goroutines, sm.active, sm.spare(), sm.clientOpen, sm.ended, sm.load, sm.err)
}

// print writes the table of samples.
func (s *sampler) print(w io.Writer) {
	fmt.Fprintln(w, "\nsamples of the proxy (rss from /proc/PID/status VmRSS; goroutines, active, ended from /metrics; spare = goroutines − 2 × active)")
	fmt.Fprintf(w, "%7s %9s %10s %8s %8s %8s %9s %6s\n", "t", "rss_mib", "goroutines", "active", "spare", "clients", "ended", "load1")
	for _, sm := range s.samples {
		fmt.Fprintln(w, sm.row())
	}
}

// summary prints what the clients did.
func (f *fleet) summary(w io.Writer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var connected, opened int
	ended, faults := map[string]int{}, map[string]int{}
	var wrote, read, msgs, pings int64
	for _, s := range f.all {
		if s.Connected {
			connected++
		}
		if s.Opened {
			opened++
			ended[s.Ended]++
		}
		if s.Fault != "" && s.Opened {
			faults[s.Fault]++
		}
		wrote, read, msgs, pings = wrote+s.Wrote, read+s.Read, msgs+s.Messages, pings+s.Pings
	}
	fmt.Fprintf(w, "\nclients: %d sessions tried, %d connected, %d opened; ended %v; faults %v\n", len(f.all), connected, opened, sorted(ended), sorted(faults))
	fmt.Fprintf(w, "clients: %d messages and %d pings sent; %d frame bytes written, %d read\n", msgs, pings, wrote, read)
}

// sorted prints a map in key order.
func sorted(m map[string]int) string {
	out := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if out != "" {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", k, m[k])
	}
	return "{" + out + "}"
}
