package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/geo"
)

const geoipUsage = "mxgrid geoip lookup [--config FILE] [--json] IP...\n       mxgrid geoip update [--config FILE] [--out FILE] [--url URL] [--account-id ID --license-key-file FILE] [--asn]"

// runGeoIP is `mxgrid geoip lookup`: it builds the Locator exactly as a node
// does (same config, same memcached, same files) and prints what the node
// would record for each address, and which layer answered. Its lookups
// fill the shared cache like a node's.
func runGeoIP(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "update" {
		return runGeoIPUpdate(ctx, args[1:], stdout)
	}
	usage := fmt.Errorf("%w: %s", errUsage, geoipUsage)
	if len(args) > 0 && isHelp(args[0]) {
		return printUsage(usage)
	}
	if len(args) == 0 || args[0] != "lookup" {
		return usage
	}
	fs := newFlagSet("geoip lookup")
	path := fs.String("config", "", "YAML configuration `file` of the node (its geo: section is used)")
	asJSON := fs.Bool("json", false, "print one JSON object per address")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: %s", errUsage, geoipUsage)
	}
	addrs := make([]netip.Addr, fs.NArg())
	for i, a := range fs.Args() {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("%w: %q is not an IP address", errUsage, a)
		}
		addrs[i] = ip
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	// Warnings (no database, memcached down) go to stderr; the answers to stdout.
	loc, err := geo.New(cfg.Geo, geo.Options{Logger: newLogger(config.Log{Format: "text", Level: "warn"}, os.Stderr)})
	if err != nil {
		return err
	}
	defer loc.Close()

	if !*asJSON {
		printDatabases(stdout, cfg.Geo, loc.Databases())
	}
	enc := json.NewEncoder(visibleJSONWriter{stdout})
	for _, ip := range addrs {
		l, layer, err := loc.Lookup(ctx, ip)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := enc.Encode(struct {
				IP       string       `json:"ip"`
				Layer    geo.Layer    `json:"layer"`
				Location geo.Location `json:"location"`
			}{ip.Unmap().String(), layer, l}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%s\t%s\t[%s]\n", ip.Unmap(), describe(ip, l, layer), layer)
	}
	return nil
}

func printDatabases(w io.Writer, cfg geo.Config, dbs []geo.DatabaseInfo) {
	if len(dbs) == 0 {
		fmt.Fprintln(w, "# no GeoIP database configured (geo.database): events are recorded without location")
	}
	for _, d := range dbs {
		if !d.Loaded {
			fmt.Fprintf(w, "# %s database %s: not loaded: %s\n", d.Kind, d.Path, d.Error)
			continue
		}
		fmt.Fprintf(w, "# %s database %s: %s (%s schema), built %s\n", d.Kind, d.Path, d.Type, d.Schema, d.Built.Format("2006-01-02"))
	}
	if len(cfg.Memcached) > 0 {
		fmt.Fprintf(w, "# memcached %s\n", strings.Join(cfg.Memcached, ", "))
	}
}

// describe renders a location the way an operator reads it.
func describe(ip netip.Addr, l geo.Location, layer geo.Layer) string {
	if layer == geo.LayerNone {
		if !geo.Public(ip) {
			return "not looked up: not a public address"
		}
		return "not looked up: no database"
	}
	// The names are the database's, and an AS's is whatever its holder
	// registered: spelled out as the admin tables are.
	var parts []string
	if l.Located {
		place := visible(strings.TrimSpace(l.Country + " " + l.CountryName))
		if l.City != "" {
			place += ", " + visible(l.City)
		}
		// A country database knows no coordinates: geo gives 0, 0.
		if l.Lat != 0 || l.Lon != 0 {
			place += fmt.Sprintf(" (%.4f, %.4f)", l.Lat, l.Lon)
			if l.AccuracyKM > 0 {
				place += fmt.Sprintf(" ±%d km", l.AccuracyKM)
			}
		}
		parts = append(parts, place)
	} else {
		parts = append(parts, "unknown to the database")
	}
	if l.ASN != 0 {
		parts = append(parts, fmt.Sprintf("AS%d %s", l.ASN, visible(l.ASOrg)))
	}
	return strings.Join(parts, "\t")
}
