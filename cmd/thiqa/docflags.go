package main

import (
	"errors"
	"flag"

	"github.com/thiqa/thiqa/signing/client"
)

// addDocFlags declares on fs the flags of `thiqa seal` and `thiqa sign`
// that become the document options (the query parameters of POST
// /api/v1/seal and /sign).
func addDocFlags(fs *flag.FlagSet) *client.Document {
	d := &client.Document{}
	fs.StringVar(&d.Reason, "reason", "", "reason for signing, written in the signature (/Reason)")
	fs.StringVar(&d.Location, "location", "", "where it was signed (/Location)")
	fs.StringVar(&d.ContactInfo, "contact-info", "", "how to reach the signer (/ContactInfo)")
	fs.IntVar(&d.Certify, "certify", 0, "make a certification signature: 1 no changes, 2 form filling and signing, 3 also annotations")
	fs.BoolVar(&d.Visible, "visible", false, "draw the signature on the page (with --rect, --page)")
	fs.IntVar(&d.Page, "page", 1, "page of a visible signature, from 1")
	fs.StringVar(&d.Rect, "rect", "", "box of a visible signature: x1,y1,x2,y2 in points from the page's lower left corner")
	fs.StringVar(&d.Locale, "locale", "", "language of a visible signature: ar or en (default: ar when the certificate has an Arabic name)")
	fs.StringVar(&d.ImageFile, "image", "", "PNG image shown in a visible signature")
	return d
}

// docError makes a refused combination of document options exit code 2.
func docError(err error) error {
	var oe *client.OptionsError
	if errors.As(err, &oe) {
		return withExit(2, err)
	}
	return err
}
