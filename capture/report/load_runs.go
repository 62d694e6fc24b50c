package report

import (
	"runtime"
	"sync"
)

// MemoryLimit is the soft memory limit wstap report sets for itself (when
// GOMEMLIMIT does not set one): the Go collector then works harder rather
// than let the heap grow to twice what a million sessions keep (about
// 300 MB read, 370 MB at most while the report is made, most of it their
// facts); a million sessions then take about 440 MiB of RSS.
const MemoryLimit = 400 << 20

// LoadRuns reads the run dirs as LoadRun does, as many at once as there are
// CPUs, telling progress (when set, from any goroutine) how many bytes each
// read took. The runs come back in the order of dirs; the error is that of
// the first dir in that order that failed.
func LoadRuns(dirs []string, progress func(n int64)) ([]*Run, error) {
	runs := make([]*Run, len(dirs))
	errs := make([]error, len(dirs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(dirs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				runs[i], errs[i] = loadRun(dirs[i], progress)
			}
		}()
	}
	for i := range dirs {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return runs, nil
}
