package main

import (
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/wstap/wstap/capture"
)

// reportBarAfter is how long wstap report reads before it shows a bar: a
// small run dir is read before a bar would be worth drawing.
const reportBarAfter = 2 * time.Second

// reportProgress draws a bar on stderr over the bytes of the run dirs'
// sessions.jsonl and events.jsonl once reading has taken reportBarAfter,
// only when stderr is a terminal (a log or a pipe gets no bar). Add is safe
// from any goroutine; stop clears the bar.
type reportProgress struct {
	read atomic.Int64
	done chan struct{}
	over chan struct{}
}

func startReportProgress(stderr io.Writer, dirs []string) *reportProgress {
	p := &reportProgress{done: make(chan struct{}), over: make(chan struct{})}
	f, isFile := stderr.(*os.File)
	if !isFile || !term.IsTerminal(int(f.Fd())) {
		close(p.over)
		return p
	}
	go p.draw(f, jsonlBytes(dirs))
	return p
}

// add counts n bytes read.
func (p *reportProgress) add(n int64) { p.read.Add(n) }

// stop ends the bar, clearing it.
func (p *reportProgress) stop() {
	select {
	case <-p.over:
	default:
		close(p.done)
		<-p.over
	}
}

func (p *reportProgress) draw(w io.Writer, total int64) {
	defer close(p.over)
	select {
	case <-p.done:
		return
	case <-time.After(reportBarAfter):
	}
	bar := progressbar.NewOptions64(max(total, 1), progressbar.OptionSetWriter(w), progressbar.OptionSetWidth(30),
		progressbar.OptionShowBytes(true), progressbar.OptionSetDescription("reading run dirs"),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		read := p.read.Load()
		if read >= total {
			bar.Describe("summarizing") // every line read: the analysis runs
		}
		bar.Set64(min(read, total))
		select {
		case <-p.done:
			bar.Finish()
			return
		case <-t.C:
		}
	}
}

// jsonlBytes is the size of the sessions.jsonl and events.jsonl of dirs.
func jsonlBytes(dirs []string) int64 {
	var n int64
	for _, d := range dirs {
		for _, name := range []string{capture.SessionsFile, capture.EventsFile} {
			if fi, err := os.Stat((&capture.RunDir{Dir: d}).Path(name)); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}
