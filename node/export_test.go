package node

// BuildSteps names New's steps in order.
func BuildSteps() []string {
	names := make([]string, len(buildSteps))
	for i, s := range buildSteps {
		names[i] = s.name
	}
	return names
}

// FailAfter makes New fail with ErrInjected right after the named step.
func FailAfter(opts Options, step string) Options {
	opts.failAfter = step
	return opts
}

// ErrInjected is the error FailAfter injects.
var ErrInjected = errInjected

// MemberAddrs is memberAddrs.
var MemberAddrs = memberAddrs
