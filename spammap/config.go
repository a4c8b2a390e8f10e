// Package spammap builds the public attack map: it aggregates the most recent
// spam and virus sources into locations, countries and networks, renders them
// over an embedded Natural Earth world map as SVG, HTML and JSON, and, on the
// cluster's leader, regenerates and stores the result every interval so that
// every node serves the same bytes.
package spammap

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// DefaultAttribution credits DB-IP Lite, the free database the project
// documents; its CC BY 4.0 licence requires attribution wherever the data is
// shown. Operators on MaxMind GeoLite2 set "attribution" to MaxMind's text.
const DefaultAttribution = "IP geolocation by DB-IP.com (CC BY 4.0)"

// Config is the `map:` section.
type Config struct {
	// Points is how many of the most recent events the map aggregates.
	Points int `yaml:"points"`
	// Window, when set, also drops events older than this (0: no limit, the
	// map covers whatever time the last Points events span).
	Window time.Duration `yaml:"window"`
	// Interval is how often the leader regenerates the map; it is also the
	// lifetime caches are told the map has.
	Interval time.Duration `yaml:"interval"`
	// FrameAncestors restricts which sites may embed /map in a frame, sent
	// as CSP frame-ancestors sources ("https://example.com", "'self'"),
	// 'self' always among them unless 'none' is (the panel previews the
	// map in a frame). Empty allows any site: the map is made to be
	// embedded.
	FrameAncestors []string `yaml:"frame_ancestors"`
	// Attribution is the credit the GeoIP data's licence asks for, printed
	// on the map.
	Attribution string `yaml:"attribution"`
}

// DefaultConfig is the original service's map: the last 250 000 events,
// rebuilt hourly, embeddable anywhere.
func DefaultConfig() Config {
	return Config{
		Points:      250_000,
		Interval:    time.Hour,
		Attribution: DefaultAttribution,
	}
}

// Validate checks the section; messages name the key relative to it.
func (c Config) Validate() error {
	if c.Points <= 0 {
		return errors.New("points: must be positive")
	}
	if c.Window < 0 {
		return errors.New("window: must not be negative")
	}
	// Shorter, the leader would spend its time rescanning events; seconds
	// are for tests and demos, production wants the default hour.
	if c.Interval < 5*time.Second {
		return fmt.Errorf("interval: %s is shorter than 5s", c.Interval)
	}
	for i, src := range c.FrameAncestors {
		if err := validFrameAncestor(src); err != nil {
			return fmt.Errorf("frame_ancestors[%d]: %w", i, err)
		}
	}
	if strings.TrimSpace(c.Attribution) == "" {
		return errors.New("attribution: must not be empty (the GeoIP licence requires credit)")
	}
	if len(c.Attribution) > 300 {
		return errors.New("attribution: longer than 300 characters")
	}
	// One line of the map's footer and of /map.svg, where XML 1.0 cannot
	// carry most control characters: the SVG was not well-formed.
	if strings.ContainsFunc(c.Attribution, unicode.IsControl) {
		return fmt.Errorf("attribution: %q must not contain control characters", c.Attribution)
	}
	return nil
}

// validFrameAncestor accepts the CSP source expressions that make sense for
// frame-ancestors (CSP3 §6.4.2): a keyword, a scheme, or a host source. It
// refuses characters that would end the directive or the header.
func validFrameAncestor(src string) error {
	switch src {
	case "'self'", "'none'", "*":
		return nil
	case "":
		return errors.New("empty source")
	}
	if strings.ContainsAny(src, " \t\r\n;,'\"") {
		return fmt.Errorf("%q is not a CSP source expression", src)
	}
	if strings.HasSuffix(src, ":") && !strings.Contains(src, "/") {
		return nil // a scheme source such as "https:"
	}
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "" && u.Host == "") {
		return fmt.Errorf("%q is not a CSP source expression", src)
	}
	return nil
}
