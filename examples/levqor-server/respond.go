package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"

	"github.com/levqor/levqor/internal/httpx"
	"github.com/levqor/levqor/internal/sqldialect"
)

func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// decode reads a JSON body strictly: size-limited (413), unknown fields
// rejected (400), one object only.
func decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "request body must be a JSON object")
		default:
			writeError(w, http.StatusBadRequest, "invalid JSON: "+jsonProblem(err))
		}
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid JSON: more than one value")
		return false
	}
	return true
}

// storeFailed answers a request whose database or Redis call failed and
// logs err under msg (never to the client): 503 with Retry-After when the
// store could not be reached or did not answer before the request's
// deadline, so clients retry later; 500 for anything else. An outage fails
// every request alike, so its lines are throttled (a.unavailableLog).
func (a *app) storeFailed(w http.ResponseWriter, r *http.Request, msg, answer string, err error) {
	a.db.closeIdleIfConnLost(err)
	if storeUnavailable(r.Context(), err) {
		if !errors.Is(r.Context().Err(), context.Canceled) { // else the client left: nothing to report
			a.unavailableLog.Log(r.Context(), slog.LevelError, msg+": store unavailable", "err", err)
		}
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, answer)
		return
	}
	a.log.ErrorContext(r.Context(), msg, "err", err)
	writeError(w, http.StatusInternalServerError, answer)
}

// storeUnavailable tells an outage (no connection, a broken one, no
// answer in time) from other store errors.
func storeUnavailable(ctx context.Context, err error) bool {
	var netErr net.Error
	return ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || sqldialect.IsConnLost(err) ||
		(errors.As(err, &netErr) && netErr.Timeout())
}

// jsonProblem says what is wrong with a body in the client's terms: the
// decoder's own text names Go types ("cannot unmarshal array into Go
// value of type main.credentials").
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return "the body must be a JSON object"
		}
		return fmt.Sprintf("%q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// jsonKind names the JSON value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}
