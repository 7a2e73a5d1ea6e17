package signer_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"os"
	"time"

	"github.com/thiqa/thiqa/signer"
)

// signFile signs a PDF file at B-LT into another file. key is any
// crypto.Signer (an HSM key in production); tsa and ca supply time-stamps
// and revocation data.
func signFile(key crypto.Signer, chain []*x509.Certificate, tsa signer.TimestampClient, ca signer.RevocationSource) error {
	in, err := os.Open("contract.pdf")
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create("contract-signed.pdf")
	if err != nil {
		return err
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = signer.Sign(ctx, in, st.Size(), out, signer.Options{
		Level:      signer.LevelBLT,
		Signer:     key,
		Chain:      chain,
		Reason:     "Issued by the Ministry",
		Validation: signer.ValidationOptions{TSA: tsa, Revocation: ca},
	})
	return err
}

// Example shows the streaming use of Sign (see signFile): the input is read
// through an io.ReaderAt and the output written once, in order.
func Example() {
	_ = signFile
}
