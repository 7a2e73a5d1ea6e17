package main

import (
	"github.com/thiqa/thiqa/timestamp"
)

// inProcessRequester is the requester the TSA records for the signing
// service's own time-stamps: what auth.Requester names a request that came
// through inprocess.Transport (no credentials, remote address "in-process"),
// so the token records read as they did when the call went over HTTP.
const inProcessRequester = "addr:in-process"

// tsaService is the TSA as `thiqa serve` wires it (serving.tsa).
type tsaService = timestamp.Service

// ownTSAFor returns the in-process TSA (timestamp.OwnClient) when tsaURL
// names this server's own /tsa and the TSA service of this server has been
// wired (sv.tsa); nil otherwise, and the HTTP client is used.
func ownTSAFor(sv *serving, publicBaseURL, tsaURL string) *timestamp.InProcessClient {
	if sv == nil {
		return nil
	}
	return timestamp.OwnClient(sv.tsa, publicBaseURL, tsaURL, inProcessRequester)
}
