// Package verdict holds the scanner's reasons as a type shared by the
// packages a verdict flows to (smtpd, events, the store's history), so the
// packages after the scanner on the mail path need not import it.
package verdict

// Reason says why a message got its action. Its values are a contract
// with every consumer of a scanner verdict (SMTP replies and headers, events, the
// metrics' reason label, mxgrid scan): compare with these constants, never
// with string literals, so a rename is a compile error and not a silently
// wrong branch.
type Reason string

const (
	// ReasonNone is a clean message (counted as reason="clean").
	ReasonNone Reason = ""
	// ReasonSpam: tagged or rejected on its score.
	ReasonSpam Reason = "spam"
	// ReasonVirus: a check named a malware signature (Result.Virus).
	ReasonVirus Reason = "virus"
	// ReasonPolicy: a check forced a rejection (Result.Reject).
	ReasonPolicy Reason = "policy"
	// ReasonCheckError: a check could not run and its on_error said tempfail.
	ReasonCheckError Reason = "check_error"
)
