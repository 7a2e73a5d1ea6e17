package main

import (
	"context"
)

// caUsage lists the CA operations: the key ceremony's on a ceremony folder
// (--ceremony, on the offline machine) and the online side's on a data
// folder (--data). docs/ceremony.md walks through them.
const caUsage = `usage:
  thiqa ca root create --ceremony DIR [--key-type ec-p384|rsa4096] [--subject-file F] [--validity 25y]
  thiqa ca root adopt --ceremony DIR --root-cert F --ca-certs DIR --crl F --token-label L --pin-file F [--module M] [--softhsm-tokens DIR] [--public-base-url U]
  thiqa ca sign --ceremony DIR --csr F --name NAME --out F [--path-len 0] [--validity 10y]
  thiqa ca crl --ceremony DIR --out F [--next-update 90d] [--revoke SERIAL --reason R]
  thiqa ca import --data D --name NAME --cert F
  thiqa ca crl import --data D --crl F
  thiqa ca rollover --data D --name NAME
  thiqa ca root retire-online --data D --crl F`

// runCA dispatches `thiqa ca …`.
func runCA(ctx context.Context, env *cliEnv, args []string) error {
	switch {
	case len(args) >= 2 && args[0] == "root" && args[1] == "create":
		return caRootCreate(ctx, env, args[2:])
	case len(args) >= 2 && args[0] == "root" && args[1] == "adopt":
		return caRootAdopt(ctx, env, args[2:])
	case len(args) >= 2 && args[0] == "root" && args[1] == "retire-online":
		return caRootRetireOnline(ctx, env, args[2:])
	case len(args) >= 2 && args[0] == "crl" && args[1] == "import":
		return caCRLImport(ctx, env, args[2:])
	case len(args) >= 1 && args[0] == "sign":
		return caSign(ctx, env, args[1:])
	case len(args) >= 1 && args[0] == "crl":
		return caCRL(ctx, env, args[1:])
	case len(args) >= 1 && args[0] == "import":
		return caImport(ctx, env, args[1:])
	case len(args) >= 1 && args[0] == "rollover":
		return caRollover(ctx, env, args[1:])
	}
	return subcommandUsage(env, "ca", caUsage, args)
}
