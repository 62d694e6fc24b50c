//go:build !unix

package load

// raiseOpenFileLimit does nothing where there is no RLIMIT_NOFILE; 0 means unknown.
func raiseOpenFileLimit() (uint64, error) { return 0, nil }
