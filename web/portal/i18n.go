package portal

import (
	"embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

//go:embed catalogue/*.json
var catalogueFS embed.FS

// Languages are the pages' languages; the first is the default.
var Languages = []string{"ar", "en"}

// catalogue maps a language to its messages by key.
type catalogue map[string]map[string]string

// loadCatalogue reads the embedded catalogues; every language must carry
// the same keys (the package's tests check it too).
func loadCatalogue() (catalogue, error) {
	c := catalogue{}
	for _, l := range Languages {
		raw, err := catalogueFS.ReadFile("catalogue/" + l + ".json")
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("catalogue %s: %w", l, err)
		}
		c[l] = m
	}
	for k := range c["en"] {
		for _, l := range Languages {
			if _, ok := c[l][k]; !ok {
				return nil, fmt.Errorf("catalogue %s lacks %q", l, k)
			}
		}
	}
	for k := range c["ar"] {
		if _, ok := c["en"][k]; !ok {
			return nil, fmt.Errorf("catalogue en lacks %q", k)
		}
	}
	return c, nil
}

// text returns the message key in lang; an unknown key shows as itself,
// so a missing message is visible rather than silent.
func (c catalogue) text(lang, key string) string {
	if s, ok := c[lang][key]; ok {
		return s
	}
	return key
}

// maxAcceptLanguage bounds the header read for the language choice.
const maxAcceptLanguage = 512

// pickLanguage chooses the page's language: an explicit choice (the
// ?lang= parameter or the lang cookie) when it names a supported language,
// else the first supported language of the Accept-Language header (RFC
// 9110 §12.5.4, by q-value), else Arabic.
func pickLanguage(explicit, acceptLanguage string) string {
	if isLanguage(explicit) {
		return explicit
	}
	if l := parseAcceptLanguage(acceptLanguage); l != "" {
		return l
	}
	return Languages[0]
}

func isLanguage(s string) bool {
	for _, l := range Languages {
		if s == l {
			return true
		}
	}
	return false
}

// parseAcceptLanguage returns the supported language with the highest
// q-value in an Accept-Language header ("" when none): "en-GB;q=0.8, ar"
// gives ar. Malformed members are skipped; q=0 excludes.
func parseAcceptLanguage(h string) string {
	if len(h) > maxAcceptLanguage {
		h = h[:maxAcceptLanguage]
	}
	best, bestQ := "", 0.0
	for part := range strings.SplitSeq(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if params != "" {
			k, v, ok := strings.Cut(strings.TrimSpace(params), "=")
			if !ok || strings.TrimSpace(k) != "q" {
				continue
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if !isLanguage(primary) || q <= 0 {
			continue
		}
		if q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}

var arabicMonths = [...]string{"يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"}

// arabicDigits writes the ASCII digits of s as Arabic-Indic digits.
func arabicDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			r = '٠' + (r - '0')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// formatDate writes t (UTC) for a reader of lang: "3 ديسمبر 2026" with
// Arabic-Indic digits in Arabic, "3 Dec 2026" in English.
func formatDate(lang string, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	if lang == "ar" {
		return arabicDigits(fmt.Sprintf("%d %s %d", t.Day(), arabicMonths[t.Month()-1], t.Year()))
	}
	return t.Format("2 Jan 2006")
}

// formatTime is formatDate with the time of day (UTC).
func formatTime(lang string, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	t = t.UTC()
	hm := t.Format("15:04")
	if lang == "ar" {
		return formatDate(lang, t) + "، " + arabicDigits(hm) + " ‏UTC"
	}
	return formatDate(lang, t) + ", " + hm + " UTC"
}

// formatNumber writes n in lang's digits.
func formatNumber(lang string, n int64) string {
	s := strconv.FormatInt(n, 10)
	if lang == "ar" {
		return arabicDigits(s)
	}
	return s
}
