// Package digest renders a directory [directory.Snapshot] for people and
// programs: the plain-text directory, the JSON snapshot, the CSV that
// `ccdir import` reads, a vCard 4.0 address book, the bundle of every
// contact's OpenPGP key, and the coverage report (which delegated ccTLDs
// have a reachable security contact). For the digest mail it writes the
// text/plain body ([WriteBody]: the directory with what changed since the
// last digest, [Diff], and a note to a recipient whose key is expiring,
// [KeyNote]) and the attachments ([Attachments]).
//
// Every writer is deterministic: the same snapshot gives the same bytes.
// Nothing here reads the clock: the exports use the snapshot's own time
// ([directory.Snapshot.Time], the time of the head entry), and the digest
// functions take the digest's time as a parameter. Writers never close w
// and write nothing else than the export.
package digest
