// Package store is Thiqa's SQL persistence: one schema, kept as embedded
// migrations for two dialects, SQLite (modernc.org/sqlite, the embedded
// default: thiqa.db in the data folder) and PostgreSQL (pgx, for a cluster of
// stateless instances). It implements the narrow storage interfaces that the
// services declare (ca and its revocation, CRLs, OCSP and hierarchy,
// timestamp, signing, identity, enrol, backup, internal/audit and
// internal/pin).
//
// Conventions for code added here:
//
//   - A feature adds store/<feature>.go and one migration per dialect with the
//     same file name, migrations/sqlite/NNNN_<feature>.sql and
//     migrations/postgres/NNNN_<feature>.sql. Open applies every migration not
//     yet recorded in schema_migrations, in file-name order, each in its own
//     transaction; no code change is needed. An applied migration must never
//     be edited: Open refuses a database whose recorded checksum differs.
//   - On PostgreSQL a migration made of nothing but plain CREATE INDEX
//     statements (comments aside; not UNIQUE) runs outside a transaction:
//     each index is built with CREATE INDEX CONCURRENTLY, so appends and
//     other writes to the table carry on during the build (migrate_index.go).
//     Give a new index its own migration file to get this; an index that
//     must exist with a table or column change stays in that migration's
//     transaction. The migration is recorded when its build starts (under
//     the migration lock, for that moment only; applied_at '-infinity'
//     until the build ends), so that a node of a release before concurrent
//     builds skips it rather than deadlock with the build; the next Open
//     takes up a build that stopped (an INVALID index is dropped and built
//     again); the build's connection has no statement_timeout or
//     lock_timeout (set back after); on a partitioned table the plain
//     build runs (logged). A later migration may rely on the index: a node
//     of this release that meets a build under way waits for it (or takes
//     it up) before the next migration, and an older node that skips the
//     claim knows no later migration. SQLite builds every index in the
//     migration's transaction: it has a single writer anyway.
//   - Queries are written with ? placeholders; the txn and DB helpers rebind
//     them to $1, $2 … for PostgreSQL. Do not use PostgreSQL's ? operators.
//   - Writes go through (*DB).writeTx, which starts a transaction that holds
//     the write lock from BEGIN on SQLite (BEGIN IMMEDIATE) and retries on
//     serialisation failures and busy databases; fn may therefore run more
//     than once and must not keep state from a failed attempt. Never nest
//     writeTx: SQLite has a single writer connection.
//   - Reads outside a transaction go through db.query / db.queryRow (on
//     SQLite a separate pool of read-only connections).
//   - Errors are wrapped with mapErr: a unique violation becomes ErrConflict,
//     sql.ErrNoRows becomes ErrNotFound, so callers decide with errors.Is.
//   - Times are stored as BIGINT Unix nanoseconds (exact in both dialects;
//     TIMESTAMPTZ would drop nanoseconds), binary values as BLOB/BYTEA, JSON
//     as TEXT holding the exact bytes written.
package store
