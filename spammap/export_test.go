package spammap

// CollectScope lets the external benchmarks time a scoped map's
// aggregation without the scheduler's store round trip.
var CollectScope = collectFiltered
