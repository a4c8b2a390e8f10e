package tracking

// NewRecorderAt is NewRecorder with an injected clock, for retention tests.
var NewRecorderAt = newRecorder
