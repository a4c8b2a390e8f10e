package spammap

// CollectScope lets the external benchmarks time a scoped map's
// aggregation without the scheduler's store round trip.
var CollectScope = collectFiltered

// SetMaxNetworks shrinks the network list for a test, until restore.
func SetMaxNetworks(n int) (restore func()) {
	old := maxNetworks
	maxNetworks = n
	return func() { maxNetworks = old }
}

// MaxScopedLoads is maxScopedLoads, for the tests.
const MaxScopedLoads = maxScopedLoads
