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
// The database file also holds the operational tables of other packages
// (the outbox, digests, seen signatures, alerts). Each owner declares its
// tables as numbered [Migration] steps, passed in [Options.Migrations];
// the signed tables have steps of their own. [Open] applies the pending
// steps, each in its own transaction, recorded in schema_migrations, and
// refuses a database with a step it does not know ([ErrNewerSchema]);
// [Store.Verify] never migrates and checks the schema against the steps
// the database records.
//
// The package imports nothing of the rest of the project: the directory key
// reaches it as a [Signer] and a [VerifyFunc].
package directory
