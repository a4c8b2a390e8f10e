package node

import (
	"log/slog"
	"sort"

	"github.com/mxgrid/mxgrid/config"
	"github.com/mxgrid/mxgrid/dnsresolver"
	"github.com/mxgrid/mxgrid/health"
	"github.com/mxgrid/mxgrid/scanner"
	"github.com/mxgrid/mxgrid/scanner/antivirus"
	"github.com/mxgrid/mxgrid/scanner/auth"
	"github.com/mxgrid/mxgrid/scanner/clamav"
	"github.com/mxgrid/mxgrid/scanner/dnsbl"
	"github.com/mxgrid/mxgrid/scanner/model"
	"github.com/mxgrid/mxgrid/scanner/rules"
	"github.com/prometheus/client_golang/prometheus"
)

// StageEnv is what building the checks needs besides the config.
type StageEnv struct {
	Log      *slog.Logger
	Registry prometheus.Registerer
	Health   *health.Registry
	// Offline builds only checks that need no network (mxgrid scan):
	// sender authentication, DNS blocklists and clamd are left out and
	// listed in Skipped.
	Offline bool
	// Skipped receives the names of checks left out in offline mode.
	Skipped *[]string
	// Resolver is the node's DNS client, shared with the relay's route
	// guard; nil builds one from cfg.DNS.
	Resolver *dnsresolver.Cached
	// Run receives the checks' long-running parts (the model file's
	// watcher, clamd's readiness probe) for the node to run; nil leaves
	// them unstarted (mxgrid scan: one message, nothing to watch).
	Run func(name string, r Runner)
}

// run hands r to env.Run, if any.
func (env StageEnv) run(name string, r Runner) {
	if env.Run != nil {
		env.Run(name, r)
	}
}

// Stages builds the scan pipeline's checks from the config, the same way
// for a serving node and for `mxgrid scan`, so an offline verdict is the
// verdict the node would give minus the network checks.
func Stages(cfg *config.Config, env StageEnv) ([]scanner.Stage, error) {
	var stages []scanner.Stage
	// Content checks need no network: they run offline too. The model is
	// the embedded default or cfg.Scanner.ModelFile, reloaded on change.
	models, err := model.NewProvider(cfg.Scanner, env.Log, env.Registry, env.Health)
	if err != nil {
		return nil, err
	}
	if w, ok := models.(*model.Watcher); ok {
		env.run("model watcher", w)
	}
	stages = append(stages,
		local(scanner.NewStage(model.NewCheck(models, cfg.Scanner.Weights), cfg.Scanner.Model)),
		local(scanner.NewStage(rules.New(cfg.Scanner.Weights), cfg.Scanner.Rules)),
	)
	// The built-in antivirus needs no network either.
	av, err := antivirus.New(cfg.Antivirus, env.Registry)
	if err != nil {
		return nil, err
	}
	stages = append(stages, local(scanner.NewStage(av, cfg.Antivirus.Builtin)))
	network, err := networkStages(cfg, env)
	if err != nil {
		return nil, err
	}
	return append(stages, network...), nil
}

// local marks a check that works on the message alone, on the CPU: the
// pipeline runs such checks one after the other on one goroutine.
func local(s scanner.Stage) scanner.Stage {
	s.Local = true
	return s
}

// networkStages builds the checks that need the network: sender
// authentication and DNS blocklists, sharing one resolver (dns:), and
// clamd. Offline, they are only listed in env.Skipped.
func networkStages(cfg *config.Config, env StageEnv) ([]scanner.Stage, error) {
	authCfg := cfg.Auth
	authCfg.AuthservID = cfg.AuthServID()
	wantAuth := authCfg.SPF || authCfg.DKIM || authCfg.DMARC || authCfg.ARC
	wantDNSBL := len(cfg.DNSBL.IPZones)+len(cfg.DNSBL.DomainZones) > 0
	wantClamd := cfg.Antivirus.Clamd.Clamd != ""
	if env.Offline {
		if env.Skipped != nil {
			for name, on := range map[string]bool{"auth": wantAuth, "dnsbl": wantDNSBL, "clamav": wantClamd} {
				if on {
					*env.Skipped = append(*env.Skipped, name)
				}
			}
			sort.Strings(*env.Skipped)
		}
		return nil, nil
	}
	var stages []scanner.Stage
	res := env.Resolver
	if res == nil && (wantAuth || wantDNSBL) {
		c := dnsresolver.New(cfg.DNS, env.Registry)
		c.OnReachabilityChange(func(up bool) { reportDNS(env.Health, up) })
		reportDNS(env.Health, true)
		env.run("dns prober", c)
		res = c
	}
	if wantAuth {
		a, err := auth.New(authCfg, res, env.Log, env.Registry)
		if err != nil {
			return nil, err
		}
		stages = append(stages, a.Stage())
	}
	if wantDNSBL {
		stages = append(stages, dnsbl.New(cfg.DNSBL, res, env.Log, env.Registry).Stage())
	}
	if wantClamd {
		c, err := clamav.New(cfg.Antivirus.Clamd, env.Health, env.Log, env.Registry)
		if err != nil {
			return nil, err
		}
		// Probes clamd for /readyz for as long as the node runs.
		env.run("clamd probe", c)
		stages = append(stages, c.Stage())
	}
	return stages, nil
}

// reportDNS puts the resolver's reachability into readiness: mail flows
// without DNS, judged on content, so it is degraded, not down.
func reportDNS(h *health.Registry, up bool) {
	if h == nil {
		return
	}
	if up {
		h.Set("dns", health.OK, "")
		return
	}
	h.Set("dns", health.Degraded, "the DNS server is not answering: SPF, DKIM and DMARC give temperror and DNS blocklists are skipped until it does")
}
