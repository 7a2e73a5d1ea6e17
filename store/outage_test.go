package store_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
	"github.com/thiqa/thiqa/internal/outage"
	"github.com/thiqa/thiqa/store"
	"github.com/thiqa/thiqa/store/storetest"
)

// pgLink forwards a loopback port to PostgreSQL and can be cut (the
// database unreachable: its host down, a partition) and restored on the
// same port.
type pgLink struct {
	t      *testing.T
	addr   string // the port the store connects to
	target string // PostgreSQL's
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newPGLink(t *testing.T, target string) *pgLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &pgLink{t: t, addr: ln.Addr().String(), target: target}
	l.serve(ln)
	t.Cleanup(l.cut)
	return l
}

func (l *pgLink) serve(ln net.Listener) {
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", l.target)
			if err != nil {
				c.Close()
				continue
			}
			l.mu.Lock()
			l.conns = append(l.conns, c, up)
			l.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every forwarded connection: new
// connections are refused, open ones break.
func (l *pgLink) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// restore listens on the same port again.
func (l *pgLink) restore() {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		l.t.Fatalf("listening again on %s: %v", l.addr, err)
	}
	l.serve(ln)
}

// TestDatabaseOutageIsMarked: while PostgreSQL cannot be reached, reads,
// write transactions and audit appends fail with errors the services
// recognise as an outage (outage.Is: they answer 503 or tryLater, not an
// internal error), and once it is back the same store works again without
// being reopened.
func TestDatabaseOutageIsMarked(t *testing.T) {
	cfg := storetest.Dialects()[1].NewConfig(t)
	if cfg.Driver != store.DriverPostgres {
		t.Fatalf("dialect %s, want postgres", cfg.Driver)
	}
	u, err := url.Parse(cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	link := newPGLink(t, u.Host)
	u.Host = link.addr
	cfg.DSN = u.String()
	db := storetest.Open(t, cfg)
	lg := audit.New(db, nil, nil, audit.Options{})
	defer lg.Close()
	ctx := ctxT(t)
	ops := []struct {
		name string
		op   func() error
	}{
		{"audit append", func() error {
			_, err := lg.Append(ctx, audit.Entry{Actor: "test", Action: "test.append", Outcome: "success"})
			return err
		}},
		{"write transaction", func() error {
			_, err := db.SerialBlocks().ReserveBlock(ctx, "tsa", 10)
			return err
		}},
		{"single-row read", func() error {
			_, err := db.SerialBlocks().NextSerial(ctx, "tsa")
			return err
		}},
		{"read", func() error {
			return db.AuditRecords(ctx, 1, func(audit.Record) error { return nil })
		}},
	}
	for _, o := range ops {
		if err := o.op(); err != nil {
			t.Fatalf("%s before the outage: %v", o.name, err)
		}
	}
	link.cut()
	for _, o := range ops {
		err := o.op()
		if err == nil {
			t.Errorf("%s during the outage succeeded", o.name)
			continue
		}
		if !outage.Is(err) {
			t.Errorf("%s during the outage: %v, not marked as an outage", o.name, err)
		}
	}
	link.restore()
	for _, o := range ops {
		if err := o.op(); err != nil {
			t.Errorf("%s after the outage: %v", o.name, err)
		}
	}
	rep, err := audit.Verify(ctx, db)
	if err != nil || !rep.OK() {
		t.Fatalf("audit chain after the outage: %v, %v", rep, err)
	}
}
