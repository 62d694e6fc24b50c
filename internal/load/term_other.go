//go:build !linux

package load

import "io"

// isTerminal reports false where wstap does not check: progress then comes
// as plain lines.
func isTerminal(io.Writer) bool { return false }
