package smtpd

import (
	"github.com/mxgrid/mxgrid/internal/bytebudget"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	connections *prometheus.CounterVec
	active      prometheus.Gauge
	stress      prometheus.Gauge
	sessions    prometheus.Counter
	// shownOut counts sessions a limit closed, by limit.
	shownOut     *prometheus.CounterVec
	rcpts        *prometheus.CounterVec
	transactions *prometheus.CounterVec
	size         prometheus.Histogram
	duration     *prometheus.HistogramVec
	// budgetRefusals counts DATA answered 452 for the memory budget.
	budgetRefusals prometheus.Counter
	// quarantined and quarantineFallbacks count tag-band mail held, and
	// held mail delivered tagged instead (over_cap, too_large, unavailable,
	// memory).
	quarantined         prometheus.Counter
	quarantineFallbacks *prometheus.CounterVec
}

// registerCertExpiry exports when the certificate in force expires, for
// an alert before it does.
func registerCertExpiry(reg prometheus.Registerer, cert *certWatcher) {
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_smtp_tls_certificate_expiry_timestamp_seconds",
		Help: "When the certificate STARTTLS presents (smtp.tls_cert) expires, as a Unix time; a replaced certificate counts once loaded (the files are looked at every 5 s; a pair that does not load keeps the previous one). Absent without smtp.tls_cert.",
	}, func() float64 { return float64(cert.notAfter().Unix()) })
}

func newMetrics(reg prometheus.Registerer, budget *bytebudget.Budget) *metrics {
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mxgrid_smtp_memory_in_flight_bytes",
		Help: "Message bytes reserved against smtp.memory_budget by transactions in progress (a body in memory counted for its copies: read, parsed, composed; a spooled one for its parse).",
	}, func() float64 { return float64(budget.Used()) })
	return &metrics{
		quarantined: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_smtp_quarantined_total",
			Help: "Messages held in the quarantine (tag_action: quarantine) and answered 250.",
		}),
		quarantineFallbacks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_smtp_quarantine_fallbacks_total",
			Help: "Messages the policy would quarantine that were tagged and delivered instead, by reason: over_cap (the domain's quarantine is full), too_large (past the 64 MiB a held message may have), unavailable (the store failed), memory (smtp.memory_budget is too small ever to hold the message), disk (the SQLite store's disk is below smtp.spool_min_free).",
		}, []string{"reason"}),
		budgetRefusals: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_smtp_budget_refusals_total",
			Help: "DATA answered 452 4.3.1 because smtp.memory_budget stayed spent for smtp.spool_wait (the sender retries).",
		}),
		connections: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_smtp_connections_total",
			Help: "Connections by result: accepted, refused_total_limit, refused_ip_limit, refused_proxy, refused_closed (closed by a shutdown before its greeting).",
		}, []string{"result"}),
		active: f.NewGauge(prometheus.GaugeOpts{
			Name: "mxgrid_smtp_connections_active",
			Help: "Connections open now.",
		}),
		stress: f.NewGauge(prometheus.GaugeOpts{
			Name: "mxgrid_smtp_stress",
			Help: "1 while the node is under stress: from 80 % of smtp.max_connections open until fewer than 60 % are, sessions between messages get smtp.stress_command_timeout for a command and 2 commands without a message, and their first error closes them; 0 otherwise.",
		}),
		sessions: f.NewCounter(prometheus.CounterOpts{
			Name: "mxgrid_smtp_sessions_total",
			Help: "SMTP sessions started (EHLO/HELO received).",
		}),
		shownOut: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_smtp_sessions_closed_by_limit_total",
			Help: "Sessions the node closed for a limit, by limit: errors (too many bad commands), junk_commands (smtp.max_junk_commands), command_timeout (a command not whole within smtp.command_timeout), and stress_errors, stress_junk_commands, stress_command_timeout (the lower limits of a node under stress, mxgrid_smtp_stress, closed a session the usual ones would have kept), all with 421; pipelining (554 5.5.0, input behind a command where RFC 2920 forbids it: smtp.forbid_unauth_pipelining).",
		}, []string{"limit"}),
		rcpts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_smtp_recipients_total",
			Help: "RCPT commands by result: accepted, unknown_domain, domain_unservable, tenants_unconfirmed, unknown_user, blocked, other_tenant, other_route, other_policy, other_quarantine, too_large (a declared SIZE over the domain's max_message_size), downstream_refused, downstream_tempfail, draining, bad_address, source_routed, negative_cache, unknown_budget, client_unknown_budget, no_postmaster, duplicate.",
		}, []string{"result"}),
		transactions: f.NewCounterVec(prometheus.CounterOpts{
			Name: "mxgrid_smtp_transactions_total",
			Help: "Finished DATA transactions by outcome (delivered, tagged, quarantined, rejected_spam, rejected_virus, rejected_policy, tempfail_scan, tempfail_quarantine: the quarantine's store did not confirm a hold, relay_tempfail, relay_permfail, too_large, read_error, bare_newline, too_many_hops) and reply class (2xx, 4xx, 5xx).",
		}, []string{"outcome", "class"}),
		size: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "mxgrid_smtp_message_size_bytes",
			Help:    "Size of received messages.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mxgrid_smtp_transaction_duration_seconds",
			Help:    "Time from the end of DATA to our reply (scan plus relay), by reply class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"class"}),
	}
}
