package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/thiqa/thiqa/enrol"
	"github.com/thiqa/thiqa/hsm"
)

// enrolUsage lists the forms of `thiqa enrol`.
const enrolUsage = `usage: thiqa enrol create --data DIR --profile P --subject-file FILE [--validity 72h]
       thiqa enrol void --data DIR REFERENCE [--reason TEXT]`

// runEnrol dispatches `thiqa enrol create` and `thiqa enrol void`.
func runEnrol(ctx context.Context, env *cliEnv, args []string) error {
	switch {
	case len(args) > 0 && args[0] == "create":
		return runEnrolCreate(ctx, env, args[1:])
	case len(args) > 0 && args[0] == "void":
		return runEnrolVoid(ctx, env, args[1:])
	}
	return subcommandUsage(env, "enrol", enrolUsage, args)
}

// openEnrolService opens the data folder dir and the enrolment service
// over its CA, in-process.
func openEnrolService(ctx context.Context, env *cliEnv, dir string) (*enrol.Service, func(), error) {
	p, a, closePlatform, err := openOperatorCA(ctx, env, dir)
	if err != nil {
		return nil, nil, err
	}
	secretKey, err := ensureEnrolKey(ctx, p, enrolSecretsKeyLabel, hsm.RSA3072)
	if err != nil {
		closePlatform()
		return nil, nil, err
	}
	svc, err := enrol.New(enrol.Config{Store: p.db.Enrolments(), Issuer: a, Certificates: p.db.Certificates(nil),
		Status: newCertificateStatus(p.cfg, p.db), Audit: p.audit, SecretKey: secretKey,
		Profiles: enrol.HolderProfiles()})
	if err != nil {
		closePlatform()
		return nil, nil, err
	}
	return svc, closePlatform, nil
}

// runEnrolVoid is `thiqa enrol void`: withdraws an enrolment whose secret
// leaked, in-process (POST /api/v1/enrolments/{reference}/void does the
// same over the API).
func runEnrolVoid(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("enrol void", env)
	dir := fs.String("data", "", "data folder (required)")
	reason := fs.String("reason", "", "why the enrolment is voided, for the audit log")
	// The reference may come before or after the flags.
	var ref string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		ref, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return withExit(0, errSilent)
		}
		return withExit(2, errSilent)
	}
	if ref == "" && fs.NArg() > 0 {
		ref = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return withExit(2, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if ref == "" {
		return withExit(2, errors.New("usage: thiqa enrol void --data DIR REFERENCE [--reason TEXT]"))
	}
	svc, closePlatform, err := openEnrolService(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer closePlatform()
	e, err := svc.Void(ctx, operatorName(), ref, *reason)
	switch {
	case errors.Is(err, enrol.ErrNotFound):
		return fmt.Errorf("no enrolment with reference %s", ref)
	case errors.Is(err, enrol.ErrUsed):
		return fmt.Errorf("enrolment %s was used already: revoke its certificate instead (%w)", ref, err)
	case errors.Is(err, enrol.ErrBusy):
		return fmt.Errorf("a certificate is being issued under enrolment %s now; run the command again in a minute (%w)", ref, err)
	case err != nil:
		return err
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(enrol.StatusOf(e))
}

// runEnrolCreate is `thiqa enrol create`: a one-time enrolment for CMP or
// EST, recorded in-process by an operator or officer at the server's
// machine (POST /api/v1/enrolments does the same over the API).
func runEnrolCreate(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags("enrol create", env)
	dir := fs.String("data", "", "data folder (required)")
	profile := fs.String("profile", "", "certificate profile: citizen-auth, citizen-signing or organisation-seal (required)")
	subjectFile := fs.String("subject-file", "", "JSON object with the subject fields (required)")
	validity := fs.Duration("validity", 0, "how long the enrolment may be used (default 7 days, at most 30)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *profile == "" || *subjectFile == "" {
		return withExit(2, errors.New("--profile and --subject-file are required"))
	}
	subject, err := readSubjectFile(*subjectFile)
	if err != nil {
		return err
	}
	svc, closePlatform, err := openEnrolService(ctx, env, *dir)
	if err != nil {
		return err
	}
	defer closePlatform()
	out, err := svc.Create(ctx, operatorName(), *profile, subject, *validity)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
