package verify

import (
	"context"
	"os"
	"testing"
)

func TestDebugOne(t *testing.T) {
	p := os.Getenv("THIQA_DEBUG_PDF")
	if p == "" {
		return
	}
	fh, _ := os.Open(p)
	st, _ := fh.Stat()
	rep, err := New(Options{debug: func(s string) { t.Log(s) }}).VerifyPDF(context.Background(), fh, st.Size())
	t.Log(err, summary(rep))
}
