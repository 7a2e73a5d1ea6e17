package signing

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signer/pdftext"
)

// AppearanceConfig is what visible signatures are drawn with.
type AppearanceConfig struct {
	// Fonts set the text (the first for what it covers, then fallbacks);
	// without fonts visible signatures are refused.
	Fonts pdftext.Fonts
	// VerifyURL, when set, is encoded in a QR code on every visible
	// signature: this deployment's verification page.
	VerifyURL string
	// Location is the time zone the signing time is shown in (default UTC).
	Location *time.Location
}

// LoadAppearance loads what visible signatures are drawn with: the fonts
// at paths (signing.fonts: an error when one cannot be used) or, when
// paths is empty, those of fallback that are installed (none: visible
// signatures are refused, and a warning on logger says so); the time zone
// named timeZone (signing.timeZone; "" the server's local zone); verifyURL,
// this deployment's verification page, for the QR code.
func LoadAppearance(paths, fallback []string, timeZone, verifyURL string, logger *slog.Logger) (AppearanceConfig, error) {
	ac := AppearanceConfig{VerifyURL: verifyURL, Location: time.Local}
	if timeZone != "" {
		loc, err := time.LoadLocation(timeZone)
		if err != nil {
			return ac, fmt.Errorf("signing.timeZone: %w", err)
		}
		ac.Location = loc
	}
	configured := len(paths) > 0
	if !configured {
		paths = fallback
	}
	for _, path := range paths {
		if _, err := os.Stat(path); err != nil && !configured {
			continue
		}
		f, err := pdftext.LoadFont(path)
		if err != nil {
			return ac, fmt.Errorf("signing.fonts: %w", err)
		}
		ac.Fonts = append(ac.Fonts, f)
	}
	if len(ac.Fonts) == 0 {
		logger.Warn("no font for visible signatures: install fonts-dejavu-core or set signing.fonts; visible signatures are refused")
	}
	return ac, nil
}

// Subject attributes a name is read from.
var (
	oidGivenName = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSurname   = asn1.ObjectIdentifier{2, 5, 4, 4}
)

// certNames returns the certificate subject's name in Arabic script and in
// Latin script ("" when it has none in that script), and its organisation.
func certNames(c *x509.Certificate) (arabic, latin, org string) {
	var given, sur string
	for _, n := range c.Subject.Names {
		v, _ := n.Value.(string)
		switch {
		case n.Type.Equal(oidGivenName):
			given = v
		case n.Type.Equal(oidSurname):
			sur = v
		}
	}
	cands := []string{c.Subject.CommonName, strings.TrimSpace(given + " " + sur)}
	for _, s := range cands {
		switch {
		case s == "":
		case arabic == "" && hasScript(s, unicode.Arabic):
			arabic = s
		case latin == "" && hasScript(s, unicode.Latin) && !hasScript(s, unicode.Arabic):
			latin = s
		}
	}
	if len(c.Subject.Organization) > 0 {
		org = c.Subject.Organization[0]
	}
	return arabic, latin, org
}

func hasScript(s string, t *unicode.RangeTable) bool {
	for _, r := range s {
		if unicode.Is(t, r) {
			return true
		}
	}
	return false
}

// appearanceLines are the text of a visible signature: who signed (the
// Arabic and the Latin name when the certificate has both), the
// organisation, the signing time in the locale, the reason and location.
// locale is "ar" or "en"; empty chooses Arabic when the certificate has an
// Arabic name.
func appearanceLines(cert *x509.Certificate, seal bool, locale string, at time.Time, loc *time.Location, reason, location string) []string {
	arabic, latin, org := certNames(cert)
	if locale == "" {
		locale = "en"
		if arabic != "" {
			locale = "ar"
		}
	}
	first, second := latin, arabic
	if locale == "ar" && arabic != "" || first == "" {
		first, second = arabic, latin
	}
	if first == "" {
		first = cert.Subject.CommonName
	}
	if loc == nil {
		loc = time.UTC
	}
	at = at.In(loc)
	var lines []string
	if locale == "ar" {
		label := "وقّعه رقمياً: "
		if seal {
			label = "ختم إلكتروني: "
		}
		lines = append(lines, label+first)
		if second != "" && second != first {
			lines = append(lines, second)
		}
		if org != "" && org != first && org != second {
			lines = append(lines, "الجهة: "+org)
		}
		lines = append(lines, "التاريخ: "+arabicDate(at))
		if reason != "" {
			lines = append(lines, "السبب: "+reason)
		}
		if location != "" {
			lines = append(lines, "المكان: "+location)
		}
		return lines
	}
	label := "Digitally signed by "
	if seal {
		label = "Sealed by "
	}
	lines = append(lines, label+first)
	if second != "" && second != first {
		lines = append(lines, second)
	}
	if org != "" && org != first && org != second && !strings.HasPrefix(first, org) {
		lines = append(lines, org)
	}
	lines = append(lines, "Date: "+at.Format("2 January 2006 15:04")+" "+zoneName(at))
	if reason != "" {
		lines = append(lines, "Reason: "+reason)
	}
	if location != "" {
		lines = append(lines, "Location: "+location)
	}
	return lines
}

// arabicMonths are the Gregorian months as written in the Gulf.
var arabicMonths = [12]string{"يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"}

// arabicDate writes t as "١٤ مايو ٢٠٢٦، ١٠:٣٠ GMT+4": Arabic-Indic digits,
// the month's Arabic name, the zone in Latin (which keeps its sign where
// it belongs in right-to-left text).
func arabicDate(t time.Time) string {
	s := fmt.Sprintf("%d %s %d، %02d:%02d", t.Day(), arabicMonths[t.Month()-1], t.Year(), t.Hour(), t.Minute())
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '٠' + (r - '0')
		}
		return r
	}, s) + " " + zoneName(t)
}

// zoneName writes t's offset as GMT, GMT+4 or GMT+5:30.
func zoneName(t time.Time) string {
	_, off := t.Zone()
	if off == 0 {
		return "GMT"
	}
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	if off%3600 == 0 {
		return fmt.Sprintf("GMT%s%d", sign, off/3600)
	}
	return fmt.Sprintf("GMT%s%d:%02d", sign, off/3600, off%3600/60)
}

// appearance builds the signer's appearance of a visible signature with
// cred.
func (s *Service) appearance(req *AppearanceRequest, cred *Credential, seal bool, at time.Time, reason, location string) (*signer.Appearance, error) {
	ac := s.cfg.Appearance
	if len(ac.Fonts) == 0 {
		return nil, Refuse(ErrBadRequest, "visible signatures are not available: no font is configured (signing.fonts)")
	}
	return &signer.Appearance{
		Rect:  req.Rect,
		Lines: appearanceLines(cred.chain[0], seal, req.Locale, at, ac.Location, reason, location),
		Fonts: ac.Fonts, PNG: req.PNG, QR: ac.VerifyURL,
	}, nil
}
