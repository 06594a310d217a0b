// Package export renders a directory [directory.Snapshot] for people and
// programs, and parses what it renders back: the plain-text directory,
// the JSON snapshot ([ParseJSON]), the CSV that `ccdir import` reads
// ([ParseCSV], applied by [Import]), a vCard 4.0 address book, the bundle
// of every contact's OpenPGP key, and the coverage report (which delegated
// ccTLDs have a reachable security contact). For the digest mail it holds
// the change model ([Diff], [Change]: what changed between two snapshots)
// and writes the text/plain body ([WriteBody], with a note to a recipient
// whose key is expiring, [KeyNote]) and the attachments ([Attachments]).
//
// Every writer is deterministic: the same snapshot gives the same bytes.
// Nothing here reads the clock: the exports use the snapshot's own time
// ([directory.Snapshot.Time], the time of the head entry), and the digest
// functions take the digest's time as a parameter. Writers never close w
// and write nothing else than the export. The package keeps no tables,
// queues nothing and sends nothing: the digest job (package digest) does.
package export
