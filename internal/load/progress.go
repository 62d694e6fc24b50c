package load

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// barEvery is how often the bar is redrawn on a terminal.
const barEvery = 200 * time.Millisecond

// lineEvery is how often a progress line is written elsewhere (a variable
// so tests need not wait for it).
var lineEvery = 5 * time.Second

// startProgress shows the run's progress on w until stop is called: a bar
// over the expected duration on a terminal, otherwise a line every
// lineEvery. A nil w shows nothing.
func startProgress(w io.Writer, r *runner) (stop func()) {
	if w == nil {
		return func() {}
	}
	var show func(final bool)
	every := lineEvery
	if isTerminal(w) {
		every = barEvery
		total := r.p.Ramp + r.p.Hold
		bar := progressbar.NewOptions64(max(total.Milliseconds(), 1),
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(barEvery/2),
			progressbar.OptionClearOnFinish(),
		)
		show = func(final bool) {
			if final {
				bar.Finish()
				return
			}
			bar.Describe(r.status())
			bar.Set64(min(time.Since(r.start).Milliseconds(), bar.GetMax64()-1))
		}
	} else {
		show = func(final bool) {
			if !final {
				fmt.Fprintf(w, "wstap load %s: %s\n", time.Since(r.start).Round(time.Second), r.status())
			}
		}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				show(false)
			case <-done:
				show(true)
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// status is one line of live counters.
func (r *runner) status() string {
	return fmt.Sprintf("%d/%d open, %d failed, %d dropped (1006), %d ended",
		r.current.Load(), r.p.Sessions, r.failed.Load(), r.dropped.Load(), r.ended.Load())
}
