package bitcoin

import "time"

// CallObserver, when set, is told of every call any Client makes: its method, how
// long it took and its error (nil on success). The operator's metrics
// (internal/metrics) set it when imported; it must be set before any call and be safe
// for concurrent use.
var CallObserver func(method string, took time.Duration, err error)

// observe tells CallObserver of a call that started at start and ended with *err.
func observe(method string, start time.Time, err *error) {
	if CallObserver != nil {
		CallObserver(method, time.Since(start), *err)
	}
}
