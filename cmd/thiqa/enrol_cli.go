package main

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/hsm"
)

// runEnrol is `thiqa enrol create`: a one-time enrolment for CMP or EST,
// recorded in-process by an operator or officer at the server's machine
// (POST /api/v1/enrolments does the same over the API).
func runEnrol(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return subcommandUsage(env, "enrol", "usage: thiqa enrol create --data DIR --profile P --subject-file FILE [--validity 72h]", args)
	}
	fs := newFlags("enrol create", env)
	dir := fs.String("data", "", "data folder (required)")
	profile := fs.String("profile", "", "certificate profile: citizen-auth, citizen-signing or organisation-seal (required)")
	subjectFile := fs.String("subject-file", "", "JSON object with the subject fields (required)")
	validity := fs.Duration("validity", 0, "how long the enrolment may be used (default 7 days, at most 30)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *profile == "" || *subjectFile == "" {
		return withExit(2, errors.New("--profile and --subject-file are required"))
	}
	subject, err := readSubjectFile(*subjectFile)
	if err != nil {
		return err
	}
	p, a, closePlatform, err := openOperatorCA(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer closePlatform()
	secretKey, err := ensureEnrolKey(ctx, p, enrolSecretsKeyLabel, hsm.RSA3072)
	if err != nil {
		return err
	}
	svc, err := enrol.New(enrol.Config{Store: p.db.Enrolments(), Issuer: a, Certificates: p.db.Certificates(nil),
		Status: newCertificateStatus(p.cfg, p.db), Audit: p.audit, SecretKey: secretKey,
		Profiles: enrol.HolderProfiles()})
	if err != nil {
		return err
	}
	out, err := svc.Create(ctx, operatorName(), *profile, subject, *validity)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
