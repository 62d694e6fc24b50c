package report

import (
	"sync"
	"sync/atomic"

	"github.com/wstap/wstap/capture/record"
)

// label is an end.first or end.how value as a session's facts keep it: a
// number in a table of the values met (records hold a dozen), two bytes
// instead of a string's sixteen.
type label uint16

// labels is the table, shared by the run dirs read at once: its names are
// replaced, never changed, so a label is read without the lock.
var labels struct {
	sync.Mutex
	byName map[string]label
	names  atomic.Pointer[[]string]
}

// maxLabels bounds the table; values past it (a hand-edited run dir) share
// the last label, otherLabel.
const maxLabels = 1 << 16

// The labels the report compares with, first in the table.
var (
	labelNone     = labelOf("")
	labelClient   = labelOf(string(record.SideClient))
	labelUpstream = labelOf(string(record.SideUpstream))
	labelProxy    = labelOf(string(record.SideProxy))
	labelShutdown = labelOf(string(record.HowShutdown))
	labelTLSError = labelOf(string(record.HowTLSError))
)

// otherLabel names the values past maxLabels.
const otherLabel = "(other)"

// labelOf is the label of s, added to the table when new.
func labelOf(s string) label {
	labels.Lock()
	defer labels.Unlock()
	if l, ok := labels.byName[s]; ok {
		return l
	}
	var names []string
	if p := labels.names.Load(); p != nil {
		names = *p
	}
	if len(names) >= maxLabels-1 {
		s = otherLabel
		if l, ok := labels.byName[s]; ok {
			return l
		}
	}
	if labels.byName == nil {
		labels.byName = map[string]label{}
	}
	l := label(len(names))
	labels.byName[s] = l
	grown := append(names[:len(names):len(names)], s)
	labels.names.Store(&grown)
	return l
}

// String is the value the label stands for.
func (l label) String() string { return (*labels.names.Load())[l] }
