package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strconv"

	"github.com/thiqa/thiqa/signer"
	"github.com/thiqa/thiqa/signing"
)

// docFlags are the flags of `thiqa seal` and `thiqa sign` that become the
// document options (the query parameters of POST /api/v1/seal and /sign).
type docFlags struct {
	reason, location, contactInfo *string
	certify                       *int
	visible                       *bool
	page                          *int
	rect, locale, image           *string
}

// addDocFlags declares the document option flags on fs.
func addDocFlags(fs *flag.FlagSet) *docFlags {
	return &docFlags{
		reason:      fs.String("reason", "", "reason for signing, written in the signature (/Reason)"),
		location:    fs.String("location", "", "where it was signed (/Location)"),
		contactInfo: fs.String("contact-info", "", "how to reach the signer (/ContactInfo)"),
		certify:     fs.Int("certify", 0, "make a certification signature: 1 no changes, 2 form filling and signing, 3 also annotations"),
		visible:     fs.Bool("visible", false, "draw the signature on the page (with --rect, --page)"),
		page:        fs.Int("page", 1, "page of a visible signature, from 1"),
		rect:        fs.String("rect", "", "box of a visible signature: x1,y1,x2,y2 in points from the page's lower left corner"),
		locale:      fs.String("locale", "", "language of a visible signature: ar or en (default: ar when the certificate has an Arabic name)"),
		image:       fs.String("image", "", "PNG image shown in a visible signature"),
	}
}

// query returns the document options as the API's query parameters, and
// the image to send as a multipart part (nil when none).
func (d *docFlags) query(q url.Values) ([]byte, error) {
	for k, v := range map[string]string{"reason": *d.reason, "location": *d.location, "contactInfo": *d.contactInfo} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *d.certify != 0 {
		q.Set("certify", strconv.Itoa(*d.certify))
	}
	if !*d.visible {
		if *d.rect != "" || *d.image != "" {
			return nil, withExit(2, errors.New("--rect and --image draw a visible signature: add --visible"))
		}
		return nil, nil
	}
	if *d.rect == "" {
		return nil, withExit(2, errors.New("--visible needs --rect x1,y1,x2,y2"))
	}
	q.Set("visible", "1")
	q.Set("page", strconv.Itoa(*d.page))
	q.Set("rect", *d.rect)
	if *d.locale != "" {
		q.Set("locale", *d.locale)
	}
	if *d.image == "" {
		return nil, nil
	}
	st, err := os.Stat(*d.image)
	if err != nil {
		return nil, fmt.Errorf("--image: %w", err)
	}
	if st.Size() > signer.MaxImageBytes {
		return nil, withExit(2, fmt.Errorf("--image: %s is larger than %d bytes", *d.image, signer.MaxImageBytes))
	}
	return os.ReadFile(*d.image)
}

// options returns the document options for the signing service in
// process (nil when none is asked for).
func (d *docFlags) options() (*signing.DocumentOptions, error) {
	q := url.Values{}
	img, err := d.query(q)
	if err != nil {
		return nil, err
	}
	o, err := signing.ParseDocumentOptions(q)
	if err != nil {
		return nil, withExit(2, err)
	}
	if o != nil && o.Appearance != nil {
		o.Appearance.PNG = img
	}
	return o, nil
}
