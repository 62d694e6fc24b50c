//go:build !unix

package load

// RaiseOpenFileLimit does nothing where there is no RLIMIT_NOFILE; 0 means unknown.
func RaiseOpenFileLimit() (uint64, error) { return 0, nil }
