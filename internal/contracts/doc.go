// Package contracts holds no code: its test keeps the typed contracts
// between packages (verdict.Reason, smtpd.Outcome, tenant's virus actions)
// from decaying back into string literals that a rename would silently
// break.
package contracts
