// Package digest is the digest job: when a digest is due ([Interval]),
// who gets what (every contact with a usable key gets the directory, what
// changed since the last digest and the attachments, rendered by package
// export, encrypted to them and signed by the directory key), and the
// record of each digest and its recipients, so that an interrupted run is
// resumed by the next ([Job.Send]). Messages are queued to the outbox;
// delivering them is the outbox's, with the options the caller gives.
// Contacts' keys are read and checked through pkg/fanout's key cache
// (fanout.Keys, one per run and time), which also says which recipients
// are skipped and why; the copies are made and queued by fanout.Queue
// (one transaction per batch, which also marks the batch's recipients).
package digest
