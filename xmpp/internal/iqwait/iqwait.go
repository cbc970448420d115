// Package iqwait bounds how long the stanza packages wait for an IQ
// response. A server (ours, a contact's, a room service) that accepts an IQ
// and never answers must not hang the caller: every round trip gets a
// deadline, the caller's if it is sooner, else Default.
//
// It imports nothing of ours and may be imported by every xmpp/ package.
package iqwait

import (
	"context"
	"time"
)

// Default is how long an IQ round trip may take when the caller set no
// sooner deadline. XEP-0198-less servers answer within seconds; federated
// requests (a contact's PEP, a remote room) within a few more.
const Default = 30 * time.Second

// Context returns ctx with a deadline at most Default from now.
func Context(ctx context.Context) (context.Context, context.CancelFunc) {
	return WithMax(ctx, Default)
}

// WithMax returns ctx with a deadline at most d from now.
func WithMax(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
