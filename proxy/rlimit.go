package proxy

import "golang.org/x/sys/unix"

// RaiseNofile raises RLIMIT_NOFILE's soft limit to the hard limit, so the
// proxy is never the first to run out of descriptors (docs/records.md rule 7), and
// returns the limits in force.
func RaiseNofile() (soft, hard uint64, err error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
			unix.Getrlimit(unix.RLIMIT_NOFILE, &r)
			return r.Cur, r.Max, err
		}
	}
	return r.Cur, r.Max, nil
}

// NofileLimits returns RLIMIT_NOFILE as it is now.
func NofileLimits() (soft, hard uint64, err error) {
	var r unix.Rlimit
	err = unix.Getrlimit(unix.RLIMIT_NOFILE, &r)
	return r.Cur, r.Max, err
}
