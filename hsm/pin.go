package hsm

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// errBadPINSource does not echo the source: it may be a PIN put in the
// wrong place.
var errBadPINSource = errors.New("hsm: PIN source must be env:NAME or file:PATH (the value given is not shown)")

// ReadPIN returns the PIN a source names, so that PINs live in a file or
// the environment and never in configuration or logs:
//
//	env:NAME          the environment variable NAME
//	file:PATH         the first line of the file PATH
//	file:///PATH      the same, as RFC 7512's pin-source writes it
//
// Errors never contain a PIN, nor a malformed source (which may be a PIN
// put in the wrong place).
func ReadPIN(source string) (string, error) {
	kind, rest, ok := strings.Cut(source, ":")
	if !ok {
		return "", errBadPINSource
	}
	var pin string
	switch kind {
	case "env":
		if rest == "" {
			return "", errors.New("hsm: PIN source env: names no variable")
		}
		v, set := os.LookupEnv(rest)
		if !set {
			return "", fmt.Errorf("hsm: PIN environment variable %s is not set", rest)
		}
		pin = v
	case "file":
		path := rest
		if strings.HasPrefix(rest, "//") {
			u, err := url.Parse(source)
			if err != nil || (u.Host != "" && u.Host != "localhost") {
				return "", errors.New("hsm: PIN source file:// URI must name a local file")
			}
			path = u.Path
		}
		if path == "" {
			return "", errors.New("hsm: PIN source file: names no file")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("hsm: reading the PIN file: %w", err)
		}
		pin, _, _ = strings.Cut(string(b), "\n")
		pin = strings.TrimSuffix(pin, "\r")
	default:
		return "", errBadPINSource
	}
	if pin == "" {
		return "", fmt.Errorf("hsm: PIN source %s gives an empty PIN", source)
	}
	return pin, nil
}
