package smtpd

// Outcome is how one DATA transaction ended. Its values are the outcome
// label of mxgrid_smtp_transactions_total and what Deps.Outcomes counts
// for the panel's statistics (domainstats): consumers switch on these
// constants, never on string literals, so a rename cannot silently zero a
// statistic.
type Outcome string

const (
	OutcomeDelivered Outcome = "delivered"
	OutcomeTagged    Outcome = "tagged"
	// OutcomeQuarantined: held in the quarantine (250), not delivered.
	OutcomeQuarantined Outcome = "quarantined"
	// OutcomeTempfailQuarantine: the quarantine's store did not tell
	// whether it held the message (451).
	OutcomeTempfailQuarantine Outcome = "tempfail_quarantine"
	OutcomeRejectedSpam       Outcome = "rejected_spam"
	OutcomeRejectedVirus      Outcome = "rejected_virus"
	OutcomeRejectedPolicy     Outcome = "rejected_policy"
	// OutcomeTempfailScan: a check failed under on_error=tempfail.
	OutcomeTempfailScan Outcome = "tempfail_scan"
	// OutcomeRelayTempfail and OutcomeRelayPermfail: the customer's server
	// refused the message at DATA, temporarily or for good.
	OutcomeRelayTempfail Outcome = "relay_tempfail"
	OutcomeRelayPermfail Outcome = "relay_permfail"
	OutcomeTooLarge      Outcome = "too_large"
	OutcomeReadError     Outcome = "read_error"
	OutcomeBareNewline   Outcome = "bare_newline"
	OutcomeTooManyHops   Outcome = "too_many_hops"
	// OutcomeNoResources: the node's memory budget was spent (452).
	OutcomeNoResources Outcome = "no_resources"
)
