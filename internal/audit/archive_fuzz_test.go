package audit_test

import (
	"bytes"
	"compress/gzip"
	"testing"

	"github.com/thiqa/thiqa/internal/audit"
)

// FuzzReadArchive: the archive file reader never panics on any content
// (given as stored, and compressed first, to reach the line parsing), and
// what it accepts is a whole range whose records it handed over in order.
// The seed corpus (testdata/fuzz/FuzzReadArchive) holds a valid archive of
// 20 records, as stored and uncompressed.
func FuzzReadArchive(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("{\"format\":\"thiqa-audit-archive\",\"v\":1}\n{\"trailer\":true,\"records\":0,\"sha256\":\"\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(data)
		zw.Close()
		for _, in := range [][]byte{data, gz.Bytes()} {
			var seqs []int64
			s, err := audit.ReadArchive(bytes.NewReader(in), nil, func(r audit.Record) error {
				seqs = append(seqs, r.Seq)
				return nil
			})
			if err != nil {
				continue
			}
			h := s.Header
			if s.Records != h.LastSeq-h.FirstSeq+1 || int64(len(seqs)) != s.Records || seqs[0] != h.FirstSeq ||
				!bytes.Equal(s.LastHash, h.Checkpoint.Hash) || s.Bytes != int64(len(in)) {
				t.Fatalf("accepted an inconsistent archive: %+v, seqs %v", s, seqs)
			}
		}
	})
}
