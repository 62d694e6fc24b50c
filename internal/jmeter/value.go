package jmeter

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
)

// Value is a property as the plan writes it: a literal ("30000") or text
// that JMeter evaluates when the test runs (${host}, ${__P(port,443)}).
// It is kept as written; Int reads a number out of it where one is there.
type Value string

// propDefault matches a value that is wholly a property lookup with a
// literal default: ${__P(name,default)} or ${__property(name,,default)}
// (JMeter's functions __P and __property).
var propDefault = regexp.MustCompile(`^\$\{__P\([^,()]*,\s*(-?\d+)\s*\)\}$|^\$\{__property\([^,()]*,[^,()]*,\s*(-?\d+)\s*\)\}$`)

// Int returns the value as a number: the literal, or the default of a
// lone ${__P(name,default)}. assumed is true when it is that default.
func (v Value) Int() (n int64, assumed, ok bool) {
	s := strings.TrimSpace(string(v))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, false, true
	}
	if m := propDefault.FindStringSubmatch(s); m != nil {
		d := m[1] + m[2]
		n, err := strconv.ParseInt(d, 10, 64)
		return n, true, err == nil
	}
	return 0, false, false
}

// IsVariable reports whether the value holds a JMeter variable or function
// reference, so that it may differ per thread or per run.
func (v Value) IsVariable() bool { return strings.Contains(string(v), "${") }

// MarshalJSON writes a number when the value is a literal integer, and
// the text as written otherwise.
func (v Value) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64); err == nil {
		return json.Marshal(n)
	}
	return json.Marshal(string(v))
}

// msOr returns a millisecond value in seconds, def when the value is
// empty or not a number.
func msOr(v Value, def float64) float64 {
	if n, _, ok := v.Int(); ok {
		return float64(n) / 1000
	}
	return def
}
