package store

import (
	"slices"
	"testing"
)

// TestIndexOnlyMigrations: the PostgreSQL migrations made of nothing but
// plain CREATE INDEX statements, which build concurrently, are exactly the
// ones listed; a migration that also changes a table, or builds a unique
// index, stays in its transaction.
func TestIndexOnlyMigrations(t *testing.T) {
	ms, err := loadMigrations(DriverPostgres)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		if b := indexOnly(m.sql); b != nil {
			got = append(got, m.version)
		}
	}
	want := []string{"0011_audit_object", "0018_audit_actor", "0019_purge_enrolments", "0030_audit_action", "0031_audit_at"}
	if !slices.Equal(got, want) {
		t.Fatalf("index-only migrations %v, want %v", got, want)
	}
	b := indexOnly("-- a comment; with a semicolon\nCREATE INDEX audit_log_action ON audit_log (action, seq);\n")
	if len(b) != 1 || b[0] != (indexBuild{name: "audit_log_action", table: "audit_log", rest: "(action, seq)"}) {
		t.Fatalf("parsed %+v", b)
	}
	b = indexOnly("create index a on t (x) include (y) where s = 'u';\nCREATE INDEX b ON t ((lower(y)));")
	if len(b) != 2 || b[0] != (indexBuild{name: "a", table: "t", rest: "(x) include (y) where s = 'u'"}) || b[1].name != "b" {
		t.Fatalf("parsed %+v", b)
	}
	for _, s := range []string{
		"CREATE UNIQUE INDEX a ON t (x);",
		"CREATE INDEX CONCURRENTLY a ON t (x);",
		"CREATE INDEX CONCURRENTLY ON t (x);",
		"create index concurrently on t (x);",
		"CREATE INDEX ON t (x);",
		"CREATE INDEX IF NOT EXISTS a ON t (x);",
		"CREATE INDEX a ON ONLY t (x);",
		"CREATE INDEX a ON t USING gin (x);",
		"CREATE INDEX a ON public.t (x);",
		"/* a */ CREATE INDEX a ON t (x);",
		"CREATE INDEX a ON t (x) /* ; */;",
		"CREATE INDEX a ON t (x) WHERE s = ';';",
		"CREATE INDEX a ON t (x) WHERE s = E'\\'';",
		"CREATE INDEX a ON t (x); COMMIT; VACUUM t;",
		"CREATE INDEX a ON t (x);\nCREATE TABLE u (x INT);",
		"CREATE INDEX a ON t (x) WHERE s = 'a--b';",
		`CREATE INDEX a ON "T" (x);`,
		"CREATE INDEX a ON t (x); ALTER TABLE t ADD COLUMN y TEXT;",
		"-- nothing\n",
	} {
		if b := indexOnly(s); b != nil {
			t.Errorf("%q read as index-only: %+v", s, b)
		}
	}
}
