package identity

import (
	"testing"
)

// BenchmarkMobileLogin measures the provider's own cost of a complete
// remote login (authorize, approve, complete, token, ID token check) over
// in-memory fakes, an in-process P-256 key and loopback HTTP: the part of
// `thiqa bench login` that is neither SQL, PIN hashing nor the HSM.
func BenchmarkMobileLogin(b *testing.B) {
	e := newEnv(b, false)
	b.ReportAllocs()
	for b.Loop() {
		code := e.mobileLogin()
		st, tok := e.exchange(e.tokenForm(code))
		if st != 200 {
			b.Fatalf("token: %d %v", st, tok)
		}
		e.parseIDToken(tok["id_token"].(string))
	}
}
