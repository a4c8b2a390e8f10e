package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/scanner"
)

// Config is the `auth:` section.
type Config struct {
	// AuthservID names us in Authentication-Results (RFC 8601 2.5). Empty
	// means the SMTP hostname; the caller fills it in before New.
	AuthservID string `yaml:"authserv_id"`
	// SPF, DKIM and DMARC switch each method on. DMARC needs the other two.
	SPF   bool `yaml:"spf"`
	DKIM  bool `yaml:"dkim"`
	DMARC bool `yaml:"dmarc"`
	// ARC verifies inbound ARC chains (RFC 8617) and records the result;
	// it does not change DMARC's.
	ARC bool `yaml:"arc"`
	// DMARCEnforce refuses mail failing DMARC under p=reject for every
	// recipient domain. Off, only domains whose Envelope.DMARCEnforce is set
	// refuse it; the others just add the DMARC_FAIL_REJECT weight.
	DMARCEnforce bool `yaml:"dmarc_enforce"`
	// MaxSignatures bounds the DKIM signatures verified per message: each
	// costs a DNS lookup and a public-key operation.
	MaxSignatures int `yaml:"max_signatures"`
	// StageConfig holds on_error and timeout. The timeout bounds the whole
	// check; lookups still out then give temperror. The check fails only
	// on a panic or when the pipeline gives up on it.
	scanner.StageConfig `yaml:",inline"`
	// Weights override the default weights of the symbols (see Weights).
	Weights map[string]float64 `yaml:"weights"`
}

// DefaultConfig checks SPF, DKIM and DMARC on every message, as every
// receiving MTA should; a DMARC p=reject failure adds DMARC_FAIL_REJECT's
// weight (domains opt into refusing it with dmarc_enforce). Lookups go
// through the node's resolver (dns:), which fails fast once its server
// stops answering, so a node without DNS loses no time: results become
// temperror and the message is judged on its content.
func DefaultConfig() Config {
	return Config{SPF: true, DKIM: true, DMARC: true, ARC: true, MaxSignatures: 5,
		StageConfig: scanner.StageConfig{OnError: scanner.OnErrorAccept, Timeout: 5 * time.Second}}
}

// Validate reports the first invalid key, named relative to the section.
func (c Config) Validate() error {
	if strings.ContainsAny(c.AuthservID, " \t;()\"\r\n") {
		return fmt.Errorf("authserv_id: %q is not a single token", c.AuthservID)
	}
	if c.DMARC && (!c.SPF || !c.DKIM) {
		return errors.New("dmarc: needs spf and dkim on (DMARC is evaluated from their results)")
	}
	if c.MaxSignatures < 1 {
		return errors.New("max_signatures: must be at least 1")
	}
	if err := c.StageConfig.Validate(); err != nil {
		return err
	}
	if c.Timeout <= 0 {
		return errors.New("timeout: must be positive")
	}
	return scanner.ValidateWeights(c.Weights, Weights())
}
