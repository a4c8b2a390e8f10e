package antivirus

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/clamav"
)

// Attachment kinds that blocked_types can name. Each is detected by content
// where the content says something (magic bytes, archive members), and by
// file name otherwise, because a name is whatever the sender typed.
const (
	KindExecutable      = "executable"       // PE (MZ+PE), ELF, Mach-O; .exe .scr .com .pif .dll .cpl .msi .jar
	KindScript          = "script"           // .js .vbs .wsf .hta .ps1 .bat .cmd ...; "#!" scripts
	KindOfficeMacro     = "office_macro"     // OLE2 with a VBA project, OOXML with vbaProject.bin, .docm/.xlsm/...
	KindDoubleExtension = "double_extension" // invoice.pdf.exe: a decoy extension before a dangerous one
	KindShortcut        = "shortcut"         // Windows .lnk by content or name, .url
	KindDiskImage       = "disk_image"       // ISO 9660 by content, .iso .img .vhd: they bypass Mark-of-the-Web
)

// AllKinds lists every kind, in the order the documentation gives them.
func AllKinds() []string {
	return []string{KindExecutable, KindScript, KindOfficeMacro, KindDoubleExtension, KindShortcut, KindDiskImage}
}

// Config is the `antivirus:` section. The clamd keys sit in the same
// section (inlined from clamav.Config); the rest drive the built-in engine,
// which is always on.
type Config struct {
	Clamd clamav.Config `yaml:",inline"`

	// BlockedTypes are attachment kinds refused by policy (see the Kind
	// constants). An empty list blocks nothing.
	BlockedTypes []string `yaml:"blocked_types"`
	// HashBlocklist is a file of SHA-256 hashes of known-bad attachments,
	// one "hex [name]" per line, '#' starts a comment. Empty: none.
	HashBlocklist string `yaml:"hash_blocklist"`
	// ZipMaxDepth bounds archives inside archives.
	ZipMaxDepth int `yaml:"zip_max_depth"`
	// ZipMaxFiles bounds archive members looked at per message, all archives together.
	ZipMaxFiles int `yaml:"zip_max_files"`
	// ZipMaxExpanded bounds the bytes decompressed per message, all archives together.
	ZipMaxExpanded int64 `yaml:"zip_max_expanded"`
	// ZipExpandedInFlight bounds the bytes decompressed by all the node's
	// scans at once, so many small archives sent at once cannot each claim
	// zip_max_expanded of memory. An archive takes what it declares before
	// it is expanded, and messages wait their turn for it (up to half the
	// time left to the scan); a message still without room is answered
	// 451 (the sender retries).
	ZipExpandedInFlight int64 `yaml:"zip_expanded_in_flight"`
	// ZipMaxRatio is the decompressed/compressed ratio above which a member
	// larger than 1 MiB is a zip bomb. Text compresses about 10:1; bombs
	// reach 1000:1 and more.
	ZipMaxRatio int64 `yaml:"zip_max_ratio"`
	// Weights override the default weights of the engine's symbols.
	Weights map[string]float64 `yaml:"weights"`
	// Builtin is the built-in engine's on_error and timeout (on_error and
	// timeout of the section itself are clamd's).
	Builtin scanner.StageConfig `yaml:"builtin"`
}

// DefaultConfig blocks every known dangerous kind and bounds archives well
// above what real mail needs.
func DefaultConfig() Config {
	return Config{
		Clamd:               clamav.DefaultConfig(),
		BlockedTypes:        AllKinds(),
		ZipMaxDepth:         3,
		ZipMaxFiles:         1000,
		ZipMaxExpanded:      64 << 20,
		ZipExpandedInFlight: 256 << 20,
		ZipMaxRatio:         100,
		// Local work bounded by the archive limits and the scan's deadline.
		Builtin: scanner.StageConfig{OnError: scanner.OnErrorAccept},
	}
}

// Validate reports the first invalid key, named relative to the section.
func (c Config) Validate() error {
	if err := c.Clamd.Validate(); err != nil {
		return err
	}
	if err := c.Builtin.Validate(); err != nil {
		return fmt.Errorf("builtin.%w", err)
	}
	for _, k := range c.BlockedTypes {
		if !slices.Contains(AllKinds(), k) {
			return fmt.Errorf("blocked_types: %q is not one of %s", k, strings.Join(AllKinds(), ", "))
		}
	}
	switch {
	case c.ZipMaxDepth < 0:
		return errors.New("zip_max_depth: must not be negative")
	case c.ZipMaxFiles < 1:
		return errors.New("zip_max_files: must be at least 1")
	case c.ZipMaxExpanded < 1:
		return errors.New("zip_max_expanded: must be at least 1")
	case c.ZipExpandedInFlight < c.ZipMaxExpanded:
		return errors.New("zip_expanded_in_flight: must be at least zip_max_expanded")
	case c.ZipMaxRatio < 2:
		return errors.New("zip_max_ratio: must be at least 2")
	}
	return scanner.ValidateWeights(c.Weights, Weights())
}
