// Package digest renders a directory [directory.Snapshot] for people and
// programs: the plain-text directory of a digest mail, the JSON snapshot,
// the CSV that `ccdir import` reads, a vCard 4.0 address book, the bundle
// of every contact's OpenPGP key, and the coverage report (which delegated
// ccTLDs have a reachable security contact).
//
// Every writer is deterministic: the same snapshot gives the same bytes.
// Nothing here reads the clock; the only time used is the snapshot's own
// ([directory.Snapshot.Time], the time of the head entry). Writers never
// close w and write nothing else than the export.
package digest
