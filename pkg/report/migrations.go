package report

import "github.com/ccdir/ccdir/directory"

// Owner is the owner of the report's table in schema_migrations.
const Owner = "report"

// Migrations are the steps of the report's table, for directory.Open
// (see directory.Migration). Each step is appended with the next
// version; a released step is never changed.
var Migrations = []directory.Migration{
	{Owner: Owner, Version: 1, Name: "operator reports", Up: reportsSchema},
}

// reportsSchema: one row per report mailed to the operator. period is its
// UTC day (YYYY-MM-DD): at most one report a day. since and until are
// what it covered, Unix milliseconds; the next report starts at the last
// until.
const reportsSchema = `
CREATE TABLE IF NOT EXISTS reports (
	period TEXT PRIMARY KEY,
	since  INTEGER NOT NULL,
	until  INTEGER NOT NULL
);
`
