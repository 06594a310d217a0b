package directory

// externalTables are tables that a tool ccdir documents for use beside
// it keeps in the database for itself: Litestream (docs/replication.md)
// makes _litestream_seq and _litestream_lock in the database it
// replicates. They are not ccdir's: the schema check passes over them
// (readSchema), and ccdir never reads or writes them, so nothing they
// hold can change what ccdir does. A trigger or view on them is still
// refused, as any ccdir never creates.
var externalTables = map[string]bool{"_litestream_seq": true, "_litestream_lock": true}
