package client

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
)

// Document are the document options of a signature as `thiqa seal` and
// `thiqa sign` take them on the command line: what goes into the signature
// dictionary and a visible signature's page, box, language and image file.
type Document struct {
	Reason, Location, ContactInfo string
	// Certify is the certification signature's permission level (0: none).
	Certify int
	// Visible draws the signature on Page (from 1) in Rect (x1,y1,x2,y2).
	Visible bool
	Page    int
	Rect    string
	// Locale is the language of a visible signature (ar or en), ImageFile
	// the PNG file it shows.
	Locale, ImageFile string
}

// OptionsError is a combination of document options that cannot be asked
// for (the command line is refused).
type OptionsError struct{ Err error }

// Error returns the refusal's message.
func (e *OptionsError) Error() string { return e.Err.Error() }

// Unwrap returns the refusal.
func (e *OptionsError) Unwrap() error { return e.Err }

// Query sets the document options as the API's query parameters (POST
// /api/v1/seal and /sign) in q, and returns the image to send as a
// multipart part (nil when none). A refused combination is an
// *OptionsError.
func (d *Document) Query(q url.Values) ([]byte, error) {
	for k, v := range map[string]string{"reason": d.Reason, "location": d.Location, "contactInfo": d.ContactInfo} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if d.Certify != 0 {
		q.Set("certify", strconv.Itoa(d.Certify))
	}
	if !d.Visible {
		if d.Rect != "" || d.ImageFile != "" {
			return nil, &OptionsError{errors.New("--rect and --image draw a visible signature: add --visible")}
		}
		return nil, nil
	}
	if d.Rect == "" {
		return nil, &OptionsError{errors.New("--visible needs --rect x1,y1,x2,y2")}
	}
	q.Set("visible", "1")
	q.Set("page", strconv.Itoa(d.Page))
	q.Set("rect", d.Rect)
	if d.Locale != "" {
		q.Set("locale", d.Locale)
	}
	if d.ImageFile == "" {
		return nil, nil
	}
	st, err := os.Stat(d.ImageFile)
	if err != nil {
		return nil, fmt.Errorf("--image: %w", err)
	}
	if st.Size() > signer.MaxImageBytes {
		return nil, &OptionsError{fmt.Errorf("--image: %s is larger than %d bytes", d.ImageFile, signer.MaxImageBytes)}
	}
	return os.ReadFile(d.ImageFile)
}

// Options returns the document options for the signing service in
// process (nil when none is asked for); a refused combination is an
// *OptionsError.
func (d *Document) Options() (*signing.DocumentOptions, error) {
	q := url.Values{}
	img, err := d.Query(q)
	if err != nil {
		return nil, err
	}
	o, err := signing.ParseDocumentOptions(q)
	if err != nil {
		return nil, &OptionsError{err}
	}
	if o != nil && o.Appearance != nil {
		o.Appearance.PNG = img
	}
	return o, nil
}
