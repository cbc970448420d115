// Package metrics owns the bridge's Prometheus metrics and its small operations HTTP server
// (/metrics, /healthz, /readyz). bridgev2 has no metrics of its own.
//
// The bridge holds one *Metrics. It is nil when metrics are disabled in the config, and every
// method is a no-op on a nil *Metrics, so call sites never branch:
//
//	m, err := metrics.New(cfg.Metrics)   // nil, nil when cfg.Metrics.Enabled is false
//	err = m.Start(ctx)                   // serves cfg.Metrics.Listen
//	m.ObserveBridgeState(loginID, status.StateConnected)
//	m.MessageBridged(metrics.XMPPToMatrix, metrics.OutcomeOK)
//	m.ObserveDecrypt(time.Since(start))
//
// The metric names are documented in docs/metrics.md; a test keeps that file in step with the
// collectors registered here. This package imports nothing of ours.
package metrics
