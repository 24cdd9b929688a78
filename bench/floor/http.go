package main

import (
	"encoding/json"
	"net/http"
)

// The HTTP floor is what net/http and encoding/json alone cost on this
// machine: a plain net/http server that decodes the check body the load
// generator sends (the README's example) with encoding/json, and answers a
// constant decision. loadgen -mode http drives it exactly as it drives a
// node's HTTP API.
//
//	floor -http-addr 127.0.0.1:17991 &
//	loadgen -mode http -targets 127.0.0.1:17991 -duration 10s

// checkBody is the check request as the HTTP API reads it.
type checkBody struct {
	UserID     string `json:"user_id"`
	Action     string `json:"action"`
	Limit      int64  `json:"limit"`
	Window     any    `json:"window"` // seconds or "60s"
	Hits       *int64 `json:"hits"`
	Algorithm  string `json:"algorithm"`
	Burst      int64  `json:"burst"`
	DryRun     bool   `json:"dry_run"`
	FailPolicy string `json:"fail_policy"`
	Shadow     bool   `json:"shadow"`
}

var allowedJSON = []byte(`{"allowed":true,"limit":1000,"remaining":999,"reset_after":"60s","retry_after":"0s"}` + "\n")

// newHTTPHandler returns the HTTP floor's handler.
func newHTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ratelimit", func(w http.ResponseWriter, r *http.Request) {
		var c checkBody
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&c); err != nil {
			http.Error(w, `{"error":{"code":"INVALID_ARGUMENT","message":"malformed JSON","field":"body"}}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(allowedJSON)
	})
	return mux
}
