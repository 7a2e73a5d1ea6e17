package hsm_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/thiqa/thiqa/hsm"
)

// Open a token, find a key by URI and sign with it as a crypto.Signer.
func Example() {
	pin, err := hsm.ReadPIN("env:THIQA_HSM_PIN")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	tok, err := hsm.Open(ctx, hsm.Config{
		ModulePath:      "/usr/lib/softhsm/libsofthsm2.so",
		TokenLabel:      "thiqa",
		PIN:             pin,
		VerifyAfterSign: true,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Registerer:      prometheus.NewRegistry(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tok.Close()

	key, err := tok.Signer(ctx, "pkcs11:token=thiqa;object=citizen-ca")
	if err != nil {
		log.Fatal(err)
	}
	var signer crypto.Signer = key // what ca/, timestamp/, signer/ receive
	digest := sha256.Sum256([]byte("to be signed"))
	sig, err := signer.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s signature: %d bytes\n", key.KeyType(), len(sig))
}
