package scanner

import (
	"math"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"weights override", func(c *Config) { c.Weights = map[string]float64{"MODEL_SPAM": 7, "HTML_FORM": 0} }, ""},
		{"zero tag score", func(c *Config) { c.TagScore = 0 }, "tag_score:"},
		{"reject not above tag", func(c *Config) { c.RejectScore = c.TagScore }, "reject_score: must be greater than tag_score"},
		{"NaN reject", func(c *Config) { c.RejectScore = math.NaN() }, "reject_score:"},
		{"no timeout", func(c *Config) { c.Timeout = 0 }, "timeout:"},
		{"infinite weight", func(c *Config) { c.Weights = map[string]float64{"URL_IP_HOST": math.Inf(1)} }, "weights.URL_IP_HOST:"},
		{"empty symbol name", func(c *Config) { c.Weights = map[string]float64{"": 1} }, "weights: empty symbol name"},
		{"zero max_parts", func(c *Config) { c.Limits.MaxParts = 0 }, "limits.max_parts: must be at least 1"},
		{"negative max_text_bytes", func(c *Config) { c.Limits.MaxTextBytes = -1 }, "max_text_bytes: must be at least 1"},
		{"part above message", func(c *Config) { c.Limits.MaxPartBytes = c.Limits.MaxDecodedBytes + 1 }, "max_part_bytes: must not exceed max_decoded_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.modify(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultConfig().Policy()
	if p.TagScore != DefaultTagScore || p.RejectScore != DefaultRejectScore || p.SubjectTag == "" {
		t.Fatalf("policy = %+v", p)
	}
}
