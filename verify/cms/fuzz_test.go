package cms

import (
	"crypto/sha256"
	"testing"

	"github.com/thiqa/thiqa/verify/path"
)

// FuzzParseCMS parses arbitrary bytes as CMS SignedData and, when they
// parse, runs the verification code paths: never a panic.
func FuzzParseCMS(f *testing.F) {
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x30, 0x03, 0x02, 0x01, 0x01, 0, 0, 0, 0, 0, 0})
	certs := path.NewCertificateCache(8)
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, err := Parse(data)
		if err != nil {
			return
		}
		// Through a certificate cache (twice: the second parse hits it),
		// the same certificates come out.
		for range 2 {
			sd2, err := ParseWith(data, certs)
			if err != nil || len(sd2.Certificates) != len(sd.Certificates) {
				t.Fatalf("ParseWith: %v, %d certificates, Parse %d", err, len(sd2.Certificates), len(sd.Certificates))
			}
			for i, c := range sd2.Certificates {
				if !c.Equal(sd.Certificates[i]) {
					t.Fatalf("certificate %d differs through the cache", i)
				}
			}
		}
		alg := path.DefaultAlgorithms()
		d := sha256.Sum256(nil)
		for i := range sd.Signers {
			si := &sd.Signers[i]
			c := si.FindSigner(sd.Certificates)
			_ = sd.VerifySigner(si, c, d[:], &alg)
			si.SigningTime()
			si.RevocationValues()
		}
		if ts, err := ParseTimestamp(data); err == nil {
			_ = ts.Verify(DigestOf(nil), nil, &alg)
		}
	})
}
