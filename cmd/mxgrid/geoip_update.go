package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/fsperm"
	"github.com/mxgrid/mxgrid/geo"
)

// Where the city databases are published. DB-IP names its free file by
// month ({month} is YYYY-MM); MaxMind needs an account and a licence key.
const (
	dbipCityURL    = "https://download.db-ip.com/free/dbip-city-lite-{month}.mmdb.gz"
	maxmindCityURL = "https://download.maxmind.com/geoip/databases/GeoLite2-City/download?suffix=tar.gz"
)

// runGeoIPUpdate is `mxgrid geoip update`: it fetches a city database into
// geo.database (or --out), asking only for a newer file than the one it
// has; a running node reloads the replaced file by itself.
func runGeoIPUpdate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("geoip update")
	path := fs.String("config", "", "YAML configuration `file` of the node (its geo.database is the target)")
	out := fs.String("out", "", "database `file` to write (default: geo.database of the config)")
	url := fs.String("url", "", "download `URL` (.mmdb, .mmdb.gz or .tar.gz; {month} becomes YYYY-MM); default DB-IP City Lite, or MaxMind GeoLite2 City with --account-id")
	account := fs.String("account-id", "", "MaxMind account `ID`")
	keyFile := fs.String("license-key-file", "", "`file` holding the MaxMind licence key")
	asn := fs.Bool("asn", false, "the file is an ASN database (geo.asn_database)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: %s", errUsage, geoipUsage)
	}
	opts := geo.UpdateOptions{URL: *url, Path: *out, ASN: *asn}
	if opts.Path == "" {
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		opts.Path = cfg.Geo.Database
		if *asn {
			opts.Path = cfg.Geo.ASNDatabase
		}
	}
	if opts.Path == "" {
		return fmt.Errorf("%w: no --out and no geo.database in the config (the node would not read the file)", errUsage)
	}
	if *account != "" {
		key, err := fsperm.ReadSecret(*keyFile)
		if err != nil {
			return fmt.Errorf("licence key: %w", err)
		}
		opts.Username, opts.Password = *account, strings.TrimSpace(string(key))
		if opts.URL == "" {
			opts.URL = maxmindCityURL
		}
	}
	if opts.URL == "" {
		opts.URL = dbipCityURL
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	// A monthly file appears some days into the month: fall back to the
	// previous month's.
	var res geo.UpdateResult
	var err error
	now := time.Now().UTC()
	for _, month := range []time.Time{now, now.AddDate(0, 0, -now.Day())} {
		o := opts
		o.URL = strings.ReplaceAll(opts.URL, "{month}", month.Format("2006-01"))
		res, err = geo.Update(ctx, o)
		if err == nil || !strings.Contains(opts.URL, "{month}") || !errors.Is(err, geo.ErrNotFound) {
			opts.URL = o.URL
			break
		}
	}
	if err != nil {
		return err
	}
	if !res.Changed {
		fmt.Fprintf(stdout, "%s is up to date (%s)\n", opts.Path, opts.URL)
		return nil
	}
	fmt.Fprintf(stdout, "%s: %s, %d bytes from %s; running nodes reload it within geo.reload_interval\n", opts.Path, res.Type, res.Size, opts.URL)
	return nil
}
