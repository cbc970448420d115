// Package migrations holds the bridge's own tables (beside bridgev2's), as
// embedded SQL upgrade files on a child version table.
//
// Files are named NN-what.sql and start with a dbutil header:
// "-- v0 -> v1: …" (or "-- vN: …" for a step from N-1). PostgreSQL and SQLite
// variants of a line are marked with "-- only: postgres" / "-- only: sqlite".
// Never edit a released file: add a new one.
package migrations
