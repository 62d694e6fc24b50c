package jmeter

import (
	"errors"
	"slices"
	"strings"
)

// wsPackage prefixes the classes of the Doornbosch WebSocket Samplers.
const wsPackage = "eu.luminis.jmeter.wssampler."

// samplerKinds maps a sampler class of the plugin to its kind.
var samplerKinds = map[string]Kind{
	wsPackage + "OpenWebSocketSampler":            KindOpen,
	wsPackage + "RequestResponseWebSocketSampler": KindRequestResponse,
	wsPackage + "SingleWriteWebSocketSampler":     KindWrite,
	wsPackage + "SingleReadWebSocketSampler":      KindRead,
	wsPackage + "PingPongSampler":                 KindPingPong,
	wsPackage + "CloseWebSocketSampler":           KindClose,
}

// repeating are the controllers whose body runs more than once in a row.
var repeating = map[string]bool{
	"LoopController": true, "WhileController": true, "ForeachController": true, "RuntimeController": true,
}

// onceControllers run their body at most once per pass.
var onceControllers = map[string]bool{
	"GenericController": true, "TransactionController": true, "IfController": true,
	"OnceOnlyController": true, "ThroughputController": true, "RandomController": true,
	"RandomOrderController": true, "InterleaveControl": true, "SwitchController": true,
	"CriticalSectionController": true,
}

// inert are elements that neither send, wait nor change a sampler's
// upgrade or frames: listeners, assertions, extractors, variables, cookies.
// They are skipped without being listed as unknown.
var inert = map[string]bool{
	"ResultCollector": true, "ResultSaver": true, "Summariser": true, "BackendListener": true,
	"ResponseAssertion": true, "DurationAssertion": true, "SizeAssertion": true, "JSONPathAssertion": true,
	"eu.luminis.jmeter.assertions.BinaryContentAssertion": true,
	"RegexExtractor": true, "JSONPostProcessor": true, "BoundaryExtractor": true, "XPathExtractor": true,
	"CookieManager": true, "CacheManager": true, "AuthManager": true, "DNSCacheManager": true,
	"Arguments": true, "CounterConfig": true, "CSVDataSet": true, "RandomVariableConfig": true,
	"ConfigTestElement": true, "UserParameters": true, "DebugPostProcessor": true,
	"BeanShellPreProcessor": true, "BeanShellPostProcessor": true,
	"JSR223PreProcessor": true, "JSR223PostProcessor": true,
}

// scope is what applies to the samplers below a hashTree level: JMeter
// applies config elements and timers to every sampler at their level and
// under it, wherever they stand among their siblings.
type scope struct {
	in      []string
	filters []Filter // nearest last
	headers []Header // nearest last
	timers  []Timer
}

// with returns s with the filters, headers and timers of one level added.
func (s scope) with(level []*node) scope {
	out := scope{in: s.in, filters: slices.Clone(s.filters), headers: slices.Clone(s.headers), timers: slices.Clone(s.timers)}
	for _, n := range level {
		if n.disabled {
			continue
		}
		switch {
		case strings.HasSuffix(n.class, "FrameFilter") && strings.HasPrefix(n.class, wsPackage):
			out.filters = append(out.filters, filterOf(n))
		case n.class == "HeaderManager":
			out.headers = mergeHeaders(out.headers, headersOf(n))
		case isTimer(n.class):
			out.timers = append(out.timers, Timer{Class: n.class, Name: n.name,
				DelayMS: Value(n.prop("ConstantTimer.delay")), RangeMS: Value(n.prop("RandomTimer.range"))})
		}
	}
	return out
}

func isTimer(class string) bool {
	return class == "ConstantTimer" || class == "UniformRandomTimer" || class == "GaussianRandomTimer"
}

// isThreadGroup: ThreadGroup, SetupThreadGroup, PostThreadGroup and the
// plugins' thread groups (ConcurrencyThreadGroup...).
func isThreadGroup(class string) bool { return strings.HasSuffix(class, "ThreadGroup") }

// known reports whether the element is read by scope.with or skipped as inert.
func known(class string) bool {
	return inert[class] || isTimer(class) || class == "HeaderManager" ||
		(strings.HasPrefix(class, wsPackage) && strings.HasSuffix(class, "FrameFilter"))
}

// build reads the thread groups out of the tree under the root hashTree.
func build(root []*node) (*Plan, error) {
	var tp *node
	for _, n := range root {
		if n.class == "TestPlan" {
			tp = n
			break
		}
	}
	if tp == nil {
		return nil, errors.New("no TestPlan element under the root hashTree")
	}
	p := &Plan{Name: tp.name}
	sc := scope{}.with(tp.kids)
	for _, n := range tp.kids {
		switch {
		case n.disabled || known(n.class):
		case isThreadGroup(n.class):
			p.ThreadGroups = append(p.ThreadGroups, threadGroup(n, sc))
		default:
			p.Unknown = append(p.Unknown, Element{Class: n.class, Name: n.name})
		}
	}
	return p, nil
}

// threadGroup reads a thread group: ThreadGroup.* properties and its main
// LoopController (ThreadGroup.main_controller); the plugins' groups name
// them TargetLevel and RampUp and run until their schedule ends.
func threadGroup(n *node, sc scope) *ThreadGroup {
	tg := &ThreadGroup{Class: n.class, Name: n.name, Loops: "-1"}
	tg.Threads = Value(n.prop("ThreadGroup.num_threads"))
	if tg.Threads == "" {
		tg.Threads = Value(n.prop("TargetLevel"))
	}
	tg.RampUp = Value(n.prop("ThreadGroup.ramp_time"))
	if tg.RampUp == "" {
		tg.RampUp = Value(n.prop("RampUp"))
	}
	if mc := n.el.child("ThreadGroup.main_controller"); mc != nil {
		l, _ := mc.prop("LoopController.loops")
		tg.Loops = Value(l)
	}
	tg.Scheduler = n.boolProp("ThreadGroup.scheduler")
	if tg.Scheduler {
		tg.Duration = Value(n.prop("ThreadGroup.duration"))
	}
	tg.Steps = steps(n.kids, sc.with(n.kids), tg.Repeats())
	return tg
}

// steps reads the samplers and controllers of one level in order, each
// with sc, the scope of that level; rep says the level runs more than once
// per thread.
func steps(level []*node, sc scope, rep bool) []Step {
	var out []Step
	for _, n := range level {
		switch {
		case n.disabled || known(n.class):
		case samplerKinds[n.class] != "":
			out = append(out, unknownKids(n.kids, sc.in)...)
			s := sampler(n, sc.with(n.kids))
			s.Repeats = rep
			out = append(out, Step{Sampler: s})
		default:
			out = append(out, block(n, sc, rep)...)
		}
	}
	return out
}

// block reads a controller; an element this package does not know is
// listed as an unknown step, and its children, if any, read as a
// controller that runs once. A Once Only Controller runs its body on the
// first pass of the loop around it only.
func block(n *node, sc scope, rep bool) []Step {
	var out []Step
	b := &Block{Class: n.class, Name: n.name}
	if repeating[n.class] {
		b.Repeats = true
		if n.class == "LoopController" {
			b.Loops = Value(n.prop("LoopController.loops"))
			k, _, ok := b.Loops.Int()
			b.Repeats = !ok || k < 0 || k > 1
		}
	} else if !onceControllers[n.class] {
		out = append(out, Step{Sampler: &Sampler{Kind: KindUnknown, Class: n.class, Name: n.name, In: sc.in}})
		if len(n.kids) == 0 {
			return out
		}
	}
	inner := sc.with(n.kids)
	inner.in = append(slices.Clone(sc.in), controllerLabel(b))
	b.Steps = steps(n.kids, inner, (rep || b.Repeats) && n.class != "OnceOnlyController")
	return append(out, Step{Block: b})
}

// controllerLabel names a controller for Sampler.In: its testname, and
// how often it runs when it repeats.
func controllerLabel(b *Block) string {
	switch {
	case b.Loops != "" && b.Repeats:
		return b.Name + " ×" + string(b.Loops)
	case b.Repeats:
		return b.Name + " (repeats)"
	}
	return b.Name
}

// unknownKids lists the unknown elements among a sampler's children
// (a JSR223 Timer, say): they run with the sampler.
func unknownKids(kids []*node, in []string) []Step {
	var out []Step
	for _, k := range kids {
		if !k.disabled && !known(k.class) {
			out = append(out, Step{Sampler: &Sampler{Kind: KindUnknown, Class: k.class, Name: k.name, In: in}})
		}
	}
	return out
}
