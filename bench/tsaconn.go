package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"strconv"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/thiqa/thiqa/timestamp"
	"github.com/thiqa/thiqa/timestamp/tsp"
)

// The load generator runs on the same cores as the server it measures, so
// every microsecond it spends is taken from the server. For plain http URLs
// it therefore speaks HTTP/1.1 itself over keep-alive connections: each
// request is a prepared byte string written with one write, each reply is
// read into a reused buffer and checked by a cheap walk of its DER (HTTP
// 200, Content-Length, PKIStatus granted with nothing else in the status,
// one token that is a SignedData ContentInfo), not by a full CMS parse.

// wireRequests returns the HTTP/1.1 requests (head and body) posting each
// of bodies to u, an http URL.
func wireRequests(u *neturl.URL, bodies [][]byte) [][]byte {
	path := u.RequestURI()
	out := make([][]byte, len(bodies))
	for i, b := range bodies {
		var w bytes.Buffer
		w.Grow(160 + len(b))
		w.WriteString("POST " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: " + timestamp.QueryContentType +
			"\r\nContent-Length: " + strconv.Itoa(len(b)) + "\r\n\r\n")
		w.Write(b)
		out[i] = w.Bytes()
	}
	return out
}

// benchConnTimeout bounds one request on a load-generator connection.
const benchConnTimeout = 30 * time.Second

// benchConn is one keep-alive connection of the load generator. It is used
// by one goroutine at a time.
type benchConn struct {
	addr     string
	c        net.Conn
	br       *bufio.Reader
	body     []byte
	deadline time.Time // the connection's current deadline
}

func newBenchConn(addr string) *benchConn {
	return &benchConn{addr: addr, body: make([]byte, 0, 8<<10)}
}

// close drops the connection; the next request dials again.
func (c *benchConn) close() {
	if c.c != nil {
		c.c.Close()
		c.c, c.br = nil, nil
	}
}

// roundTrip writes one prepared request and checks its reply.
func (c *benchConn) roundTrip(ctx context.Context, wire []byte) error {
	if c.c == nil {
		d := net.Dialer{Timeout: 10 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return err
		}
		c.c, c.br, c.deadline = conn, bufio.NewReaderSize(conn, 16<<10), time.Time{}
	}
	// Setting a deadline costs a timer update: move it only when it is
	// less than half a timeout away.
	if now := time.Now(); c.deadline.Sub(now) < benchConnTimeout/2 {
		c.deadline = now.Add(benchConnTimeout)
		if err := c.c.SetDeadline(c.deadline); err != nil {
			c.close()
			return err
		}
	}
	if _, err := c.c.Write(wire); err != nil {
		c.close()
		return err
	}
	status, n, keep, err := readReplyHead(c.br)
	if err != nil {
		c.close()
		return err
	}
	if cap(c.body) < n {
		c.body = make([]byte, 0, n)
	}
	c.body = c.body[:n]
	if _, err := io.ReadFull(c.br, c.body); err != nil {
		c.close()
		return err
	}
	if !keep {
		c.close()
	}
	if status != 200 {
		return fmt.Errorf("HTTP %d", status)
	}
	return checkGranted(c.body)
}

// readReplyHead reads an HTTP/1.1 status line and header, returning the
// status code, the Content-Length (required) and whether the connection
// stays open.
func readReplyHead(br *bufio.Reader) (status, length int, keep bool, err error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, 0, false, err
	}
	if len(line) < 13 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) || line[12] != ' ' && line[12] != '\r' {
		return 0, 0, false, fmt.Errorf("bad HTTP status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, false, fmt.Errorf("bad HTTP status line %q", line)
	}
	length, keep = -1, true
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, 0, false, fmt.Errorf("bad HTTP header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 || length > 1<<20 {
				return 0, 0, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, 0, false, fmt.Errorf("unexpected Transfer-Encoding %q", value)
		}
	}
	if length < 0 {
		return 0, 0, false, errors.New("reply without Content-Length")
	}
	return status, length, keep, nil
}

// grantedStatus is the DER PKIStatusInfo {status granted} and
// signedDataOID the DER OBJECT IDENTIFIER of id-signedData.
var (
	grantedStatus = []byte{0x30, 0x03, 0x02, 0x01, 0x00}
	signedDataOID = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}
)

// checkGranted checks a DER TimeStampResp cheaply: one SEQUENCE holding a
// PKIStatusInfo that is exactly {granted} and one token, a ContentInfo of
// id-signedData, with nothing after it. Anything else is parsed in full
// for the error message.
func checkGranted(der []byte) error {
	in := cryptobyte.String(der)
	var resp, si, tok, ci cryptobyte.String
	if in.ReadASN1(&resp, cbasn1.SEQUENCE) && in.Empty() &&
		resp.ReadASN1Element(&si, cbasn1.SEQUENCE) && bytes.Equal(si, grantedStatus) &&
		resp.ReadASN1Element(&tok, cbasn1.SEQUENCE) && resp.Empty() &&
		tok.ReadASN1(&ci, cbasn1.SEQUENCE) && bytes.HasPrefix(ci, signedDataOID) {
		return nil
	}
	r, err := tsp.ParseResponse(der)
	if err != nil {
		return err
	}
	if r.Status.Status != tsp.StatusGranted {
		return fmt.Errorf("not granted: %s", r.Status)
	}
	return errors.New("granted, but the reply is not one status and one SignedData token")
}
