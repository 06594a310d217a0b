// Package directory holds the ccTLD contact directory: the model (ccTLDs,
// contacts, roles), its validation, the SQLite store and the signed,
// hash-chained ledger of which the state tables are a view.
//
// Every change is one SQLite transaction that applies an operation to the
// state tables and appends one ledger entry: sequence number, time, actor,
// operation, canonical JSON payload, the hash of the previous entry, its own
// hash and the directory key's signature over that hash. The same code that
// applies an operation live replays it during [Store.Verify], so the state
// can always be rebuilt from the ledger and compared with what is on disk.
//
// The package imports nothing of the rest of the project: the directory key
// reaches it as a [Signer] and a [VerifyFunc].
package directory
