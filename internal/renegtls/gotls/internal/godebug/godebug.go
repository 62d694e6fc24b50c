// Package godebug stands in for Go's internal/godebug in the wstap copy of
// crypto/tls: a setting's value is read once from the GODEBUG environment
// variable (the last name=value for the name wins, as in the runtime), so a
// user who sets GODEBUG=tlsrsakex=1 gets the same behaviour from both copies.
// The //go:debug lines and go.mod godebug defaults that the real package
// also honours are not read, and IncNonDefault counts nothing.
// See ../../PATCH.md.
package godebug

import (
	"os"
	"strings"
	"sync"
)

// Setting is one GODEBUG setting.
type Setting struct {
	name  string
	once  sync.Once
	value string
}

// New returns the setting called name.
func New(name string) *Setting { return &Setting{name: name} }

// Name returns the setting's name.
func (s *Setting) Name() string { return s.name }

// Value returns the setting's value in GODEBUG, "" when it is not set.
func (s *Setting) Value() string {
	s.once.Do(func() { s.value = lookup(os.Getenv("GODEBUG"), s.name) })
	return s.value
}

// IncNonDefault is a no-op: the runtime/metrics counters are std-only.
func (s *Setting) IncNonDefault() {}

// lookup finds name's value in a comma-separated name=value list.
func lookup(env, name string) string {
	value := ""
	for _, kv := range strings.Split(env, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.TrimSpace(k) == name {
			value = v
		}
	}
	return value
}
