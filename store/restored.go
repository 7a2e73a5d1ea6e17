package store

import (
	"context"

	"github.com/thiqa/thiqa/backup"
	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/timestamp"
)

// Restored is a restored store and the audit log written on it, as a
// restore checks and completes them (backup.RestoredStore).
type Restored struct {
	*DB
	log *audit.Log
}

// NewRestored returns db with log, the audit log on it; Close closes both.
func NewRestored(db *DB, log *audit.Log) *Restored { return &Restored{DB: db, log: log} }

// Append records e in the audit log.
func (s *Restored) Append(ctx context.Context, e audit.Entry) (audit.Record, error) {
	return s.log.Append(ctx, e)
}

// RecordDeployment records rootSHA256 as the deployment identity unless
// the store has one, and returns the one it has.
func (s *Restored) RecordDeployment(ctx context.Context, rootSHA256 string) (string, error) {
	have, _, err := s.DB.RecordDeployment(ctx, Deployment{RootSHA256: rootSHA256})
	return have.RootSHA256, err
}

// RaiseCounters raises the TSA serial counter and the CRL numbers of
// crlIssuers to floor at least, and says what it raised.
func (s *Restored) RaiseCounters(ctx context.Context, floor int64, crlIssuers []string) ([]backup.Raised, error) {
	raised, err := s.DB.RaiseCounters(ctx, floor, []string{timestamp.SerialCounter}, crlIssuers)
	out := make([]backup.Raised, len(raised))
	for i, c := range raised {
		out[i] = backup.Raised{Table: c.Table, Name: c.Name, From: c.From, To: c.To}
	}
	return out, err
}

// Close closes the audit log, then the store.
func (s *Restored) Close() error {
	s.log.Close()
	return s.DB.Close()
}

// Backup is the state as a restore judges it.
func (st PostgresState) Backup() backup.PostgresState {
	out := backup.PostgresState{Tables: st.Tables}
	if d := st.Deployment; d != nil {
		out.RootSHA256, out.RecordedAt = d.RootSHA256, d.CreatedAt
	}
	return out
}
