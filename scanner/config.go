package scanner

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/mxgrid/mxgrid/internal/periodic"
)

// Config is the scanner's part of the node configuration (YAML key
// `scanner:`). Zero values are not meaningful: start from DefaultConfig.
type Config struct {
	// TagScore is the global default score at or above which mail is tagged
	// (X-Spam-* headers, optional subject prefix). Domains may override it.
	TagScore float64 `yaml:"tag_score"`
	// RejectScore is the global default score at or above which mail is
	// refused with 550 5.7.1. It must be above TagScore.
	RejectScore float64 `yaml:"reject_score"`
	// SubjectTag is prefixed to the Subject of tagged mail; empty disables it.
	SubjectTag string `yaml:"subject_tag"`
	// Timeout bounds the scan of one message (all checks together).
	Timeout time.Duration `yaml:"timeout"`
	// ModelFile is a model written by `mxgrid train`. Empty means the model
	// embedded in the binary. The file is reloaded when it changes on disk.
	ModelFile string `yaml:"model_file"`
	// ModelReloadInterval is how often ModelFile is looked at (a stat; it
	// is read when its size or modification time changed).
	ModelReloadInterval time.Duration `yaml:"model_reload_interval"`
	// Weights overrides the default weight of a symbol of the MIME parser,
	// the model or the rules by name (for example URL_IP_HOST: 3, or
	// HTML_HIDDEN_TEXT: 0 to disable it). Validate checks the values; the
	// names are checked by package config with ValidateWeights, since the
	// model's and the rules' symbol tables live in packages importing this one.
	Weights map[string]float64 `yaml:"weights"`
	// Model and Rules are the on_error and timeout of the statistical
	// model's check and of the rules; the network checks and the
	// antivirus have theirs in their own sections.
	Model StageConfig `yaml:"model"`
	Rules StageConfig `yaml:"rules"`
	// Limits bound the one MIME walk every check reads from.
	Limits Limits `yaml:"limits"`
}

// Limits bound the work and memory one message can cause in the parser.
// Reaching one is a finding, MIME_TOO_COMPLEX (weighted at the tag score):
// content that was not read cannot be judged clean. MaxTextBytes is the
// exception: a long legitimate text must not tag, and the antivirus
// reads the parts whole.
type Limits struct {
	// MaxParts is the number of MIME entities listed per message. The
	// walk reads the text of up to five times as many, so a flood of
	// empty parts cannot hide the text behind it.
	MaxParts int `yaml:"max_parts"`
	// MaxDepth is the nesting of multiparts and messages read.
	MaxDepth int `yaml:"max_depth"`
	// MaxPartBytes is the decoded bytes kept of one part.
	MaxPartBytes int `yaml:"max_part_bytes"`
	// MaxDecodedBytes is the decoded bytes kept of all parts together.
	MaxDecodedBytes int `yaml:"max_decoded_bytes"`
	// MaxTextBytes is the decoded text the model and rules read per
	// message, of text/plain and of HTML source each.
	MaxTextBytes int `yaml:"max_text_bytes"`
}

// DefaultLimits are generous for real mail (the decoded byte limits are
// above any SMTP size limit, since base64 decodes to 3/4) and stop nesting
// bombs and part floods.
func DefaultLimits() Limits {
	return Limits{
		MaxParts:        200,
		MaxDepth:        10,
		MaxPartBytes:    64 << 20,
		MaxDecodedBytes: 64 << 20,
		MaxTextBytes:    1 << 20,
	}
}

// Validate reports every invalid limit, naming its key.
func (l Limits) Validate() error {
	var errs []error
	for _, k := range []struct {
		key string
		v   int
	}{
		{"max_parts", l.MaxParts}, {"max_depth", l.MaxDepth}, {"max_part_bytes", l.MaxPartBytes},
		{"max_decoded_bytes", l.MaxDecodedBytes}, {"max_text_bytes", l.MaxTextBytes},
	} {
		if k.v < 1 {
			errs = append(errs, fmt.Errorf("%s: must be at least 1, got %d", k.key, k.v))
		}
	}
	if l.MaxPartBytes > l.MaxDecodedBytes {
		errs = append(errs, fmt.Errorf("max_part_bytes: must not exceed max_decoded_bytes (%d), got %d", l.MaxDecodedBytes, l.MaxPartBytes))
	}
	return errors.Join(errs...)
}

// Default thresholds. Tag is where the embedded model's calibration puts
// 0.1 % of the training ham (`mxgrid train` fits the model's points so
// that this score is 6); reject is where the calibrated spam probability
// reaches 0.9999 above every training ham. scanner/eval's
// TestCorpusAcceptance checks both against the corpus.
const (
	DefaultTagScore    = 6
	DefaultRejectScore = 10
)

// DefaultConfig returns the configuration used when the YAML says nothing.
func DefaultConfig() Config {
	return Config{
		TagScore:    DefaultTagScore,
		RejectScore: DefaultRejectScore,
		SubjectTag:  "[SPAM]",
		Timeout:     20 * time.Second,
		// A stat: cheap, and a model deployed reaches every node at once.
		ModelReloadInterval: 5 * time.Second,
		// Local CPU work: bounded by the scan's deadline, and a failure
		// (no model loaded, a panic) should not hold mail.
		Model:  StageConfig{OnError: OnErrorAccept},
		Rules:  StageConfig{OnError: OnErrorAccept},
		Limits: DefaultLimits(),
	}
}

// Policy returns the global default policy these settings describe.
func (c Config) Policy() Policy {
	return Policy{TagScore: c.TagScore, RejectScore: c.RejectScore, SubjectTag: c.SubjectTag}
}

// maxSubjectTag is a domain's limit on its subject_tag too.
const maxSubjectTag = 64

// Validate reports the first invalid setting, naming its key.
func (c Config) Validate() error {
	var errs []error
	if c.TagScore <= 0 || math.IsNaN(c.TagScore) || math.IsInf(c.TagScore, 0) {
		errs = append(errs, fmt.Errorf("tag_score: must be a positive number, got %v", c.TagScore))
	}
	if !(c.RejectScore > c.TagScore) || math.IsInf(c.RejectScore, 0) {
		errs = append(errs, fmt.Errorf("reject_score: must be greater than tag_score (%v), got %v", c.TagScore, c.RejectScore))
	}
	// As a domain's subject_tag (tenant.Policy.Validate): the tag goes into
	// the Subject field. Unchecked here, a CR LF in it made the rewritten
	// header fail to serialise, and every tagged message was relayed with
	// its original header: no tag, and the sender's forged X-Spam-* and
	// Authentication-Results fields, which the rewrite removes, kept.
	if len(c.SubjectTag) > maxSubjectTag {
		errs = append(errs, fmt.Errorf("subject_tag: at most %d bytes, got %d", maxSubjectTag, len(c.SubjectTag)))
	} else if strings.ContainsFunc(c.SubjectTag, unicode.IsControl) {
		errs = append(errs, fmt.Errorf("subject_tag: %q must not contain control characters (it goes into a header)", c.SubjectTag))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: must be positive, got %v", c.Timeout))
	}
	if c.ModelReloadInterval < periodic.MinInterval {
		errs = append(errs, fmt.Errorf("model_reload_interval: at least %v, got %v", periodic.MinInterval, c.ModelReloadInterval))
	}
	if err := c.Model.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("model.%w", err))
	}
	if err := c.Rules.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("rules.%w", err))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("limits.%w", err))
	}
	names := make([]string, 0, len(c.Weights))
	for name := range c.Weights {
		names = append(names, name)
	}
	sort.Strings(names) // a stable error order for operators and tests
	for _, name := range names {
		w := c.Weights[name]
		if name == "" {
			errs = append(errs, errors.New("weights: empty symbol name"))
		}
		if math.IsNaN(w) || math.IsInf(w, 0) {
			errs = append(errs, fmt.Errorf("weights.%s: must be a finite number, got %v", name, w))
		}
	}
	return errors.Join(errs...)
}

// SymbolOwner is a check whose symbols take their weights under another
// config key than the one being validated.
type SymbolOwner struct {
	Kind    string             // "an auth": the error says "X is an auth symbol"
	Key     string             // where its weights are set: "auth.weights"
	Weights map[string]float64 // its symbols' default weights
}

// ValidateWeights refuses a weights key naming a symbol that known, the
// default weights of the symbols the key reaches, does not have: a typo or
// another check's symbol would otherwise be accepted and change nothing.
// A symbol of one of owners is named with the key that does set it. Names
// are checked in sorted order, so the error is the same on every run.
func ValidateWeights(weights, known map[string]float64, owners ...SymbolOwner) error {
	for _, name := range slices.Sorted(maps.Keys(weights)) {
		if _, ok := known[name]; ok {
			continue
		}
		for _, o := range owners {
			if _, ok := o.Weights[name]; ok {
				return fmt.Errorf("weights: %s is %s symbol: set it in %s", name, o.Kind, o.Key)
			}
		}
		return fmt.Errorf("weights: unknown symbol %q", name)
	}
	return nil
}
