// Package report is the operator's summary of what needs attention
// (ccdir report): failed and bounced deliveries, stale and unreachable
// contacts, keys expiring, the guarded key and email changes that wait
// and those decided, refused mail by reason, since the last report. It
// reads what the owning packages give (outbox, liveness, receive),
// renders the summary, and records each report mailed, one a day at
// most, in its table reports, in the transaction that queues it.
package report
