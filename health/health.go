// Package health collects what each part of the node says about its own
// state, so /readyz can tell a load balancer whether this node should get
// mail now, and why not.
//
// Two levels matter to an operator: NotReady takes the node out of rotation
// (503 on /readyz: SMTP not listening, no tenant snapshot, draining), while
// Degraded keeps it in (200) but says what is missing (clamd down with
// on_error=accept, no GeoIP database, memcached unreachable): mail still
// flows, with less protection or less data.
package health

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Level is how serious a component's condition is.
type Level int

const (
	OK Level = iota
	Degraded
	NotReady
)

func (l Level) String() string {
	switch l {
	case OK:
		return "ok"
	case Degraded:
		return "degraded"
	case NotReady:
		return "not_ready"
	}
	return "unknown"
}

// Condition is one component's reported state.
type Condition struct {
	Component string `json:"component"`
	Level     string `json:"level"`
	Reason    string `json:"reason,omitempty"`
}

// Registry holds the latest condition of every component. The zero value is
// not usable; use New.
type Registry struct {
	mu         sync.RWMutex
	conditions map[string]cond
}

type cond struct {
	level  Level
	reason string
}

// New returns an empty registry: a node with nothing reported is ready.
func New() *Registry {
	return &Registry{conditions: make(map[string]cond)}
}

// Set records component's condition, replacing the previous one. reason
// should say what is wrong in words an operator can act on.
func (r *Registry) Set(component string, level Level, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if level == OK {
		reason = ""
	}
	r.conditions[component] = cond{level: level, reason: reason}
}

// Report returns the worst level and every non-OK condition, sorted by
// component so the output is stable.
func (r *Registry) Report() (Level, []Condition) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	worst := OK
	var out []Condition
	for name, c := range r.conditions {
		if c.level > worst {
			worst = c.level
		}
		if c.level != OK {
			out = append(out, Condition{Component: name, Level: c.level.String(), Reason: c.reason})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return worst, out
}

var levelDesc = prometheus.NewDesc("mxgrid_health_level",
	"Readiness of each component as /readyz reports it: 0 ok, 1 degraded (mail flows with less protection or data), 2 not ready (the node should get no mail).",
	[]string{"component"}, nil)

// Register exports every component's level as mxgrid_health_level, so an
// alert sees a degraded node: /readyz answers it 200, and says why only on
// the management listener.
func (r *Registry) Register(reg prometheus.Registerer) {
	reg.MustRegister(collector{r})
}

type collector struct{ r *Registry }

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- levelDesc }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.RLock()
	defer c.r.mu.RUnlock()
	for name, cd := range c.r.conditions {
		ch <- prometheus.MustNewConstMetric(levelDesc, prometheus.GaugeValue, float64(cd.level), name)
	}
}
