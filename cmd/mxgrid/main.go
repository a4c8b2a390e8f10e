// Command mxgrid is the whole product in one binary: the scan node (serve)
// and the tools around it. Each subcommand lives in its own file; this one
// only dispatches.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run gets the arguments after the command name
// and writes its normal output to stdout.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = map[string]command{
	"serve":      {"run a scan node (SMTP in, relay to customers' servers)", runServe},
	"scan":       {"scan .eml files or folders offline and explain each verdict", runScan},
	"train":      {"train a spam model file from spam and ham folders", runTrain},
	"eval":       {"cross-validate the verdict on spam and ham folders", runEval},
	"loadgen":    {"send mail to nodes like an MTA and report rates, or count arrivals (sink)", runLoadgen},
	"geoip":      {"look up IP addresses as a node would, and from which cache layer", runGeoIP},
	"version":    {"print the version", runVersion},
	"health":     {"exit 0 when a node's /readyz answers 200 (the image's HEALTHCHECK)", runHealth},
	"keygen":     {"print a new random key (cluster.secret_key_file, notify.link_keys), or write one to a file", runKeygen},
	"token":      {"create an admin API token (operator or reseller) in the store", runToken},
	"backup":     {"write a consistent backup of the embedded SQLite store, while the node runs", runBackup},
	"restore":    {"restore a backup into a data directory without a database", runRestore},
	"demo":       {"run a three-node demo cluster on loopback with sample spam and ham", runDemo},
	"reseller":   {"list, create, show, change or delete resellers through a node's admin API", runReseller},
	"customer":   {"list, create, show, change or delete customers through a node's admin API", runCustomer},
	"domain":     {"list, create, show, change or delete domains through a node's admin API", runDomain},
	"recipient":  {"list, add, show, delete or import a domain's recipients through the admin API", runRecipient},
	"quarantine": {"list, show, release or delete quarantined messages through a node's admin API", runQuarantine},
	"messages":   {"search message tracking (where is my mail?) through a node's admin API", runMessages},
	"map":        {"rebuild the spam map's rollup from the stored events (after a rolling upgrade)", runMap},
}

// errUsage marks errors whose message is the usage text itself.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(stopOnSignal(), os.Args[1:], os.Stdout, os.Stderr))
}

// stopOnSignal returns a context that ends at the first SIGTERM or SIGINT.
// The second one ends the process at once: an operator or supervisor who
// signals again does not want to wait out a drain. The channel holds both,
// so a second signal that arrives before the first is handled is not
// lost, as it was when the second one relied on the handler having been
// removed by then.
func stopOnSignal() context.Context {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-signals
		cancel()
		sig := <-signals
		fmt.Fprintf(os.Stderr, "mxgrid: second %s, exiting without waiting for the drain\n", sig)
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	return ctx
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "mxgrid: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := cmd.run(ctx, args[1:], stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		// Errors quote others' text: the API's reasons, a customer's
		// server refusing a release.
		fmt.Fprintf(stderr, "mxgrid %s: %s\n", args[0], visibleLines(err.Error()))
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mxgrid <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'mxgrid <command> -h' for a command's flags.")
}

// parseFlags parses args into fs; an unknown flag or a bad value is a
// usage error (exit 2), the flag package having printed the flags.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return err
}

// isHelp reports an argument asking for a command's usage.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("mxgrid "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}
