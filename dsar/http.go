package dsar

import (
	"github.com/levqor/levqor/internal/httpx"

	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
)

// DefaultMaxBody caps request bodies of the handlers.
const DefaultMaxBody = 4 << 10

// HandlerConfig configures Handler.
type HandlerConfig struct {
	// Subject returns the authenticated subject of a request (for example
	// from tokens.FromContext); ok false answers 401. Required. The subject
	// is never taken from the request body or URL.
	Subject func(r *http.Request) (subject string, ok bool)
	// MaxBody caps request bodies; larger ones get 413. Default DefaultMaxBody.
	MaxBody int64
	// Filename names the export download. Default "personal-data.json".
	Filename string
	// Aliases returns other names of the subject (such as the account's
	// email when the subject is a user id) that a request body may use to
	// name them. Optional.
	Aliases func(ctx context.Context, subject string) []string
}

// requestBody is what the endpoints accept. Subject (or email) may be given
// for clarity; it must then be the authenticated subject.
type requestBody struct {
	Subject string `json:"subject"`
	Email   string `json:"email"`
	Confirm bool   `json:"confirm"`
}

// Handler serves the authenticated subject only:
//
//	GET or POST /export          the JSON document, as an attachment
//	GET or POST /export/summary  counts per source
//	POST        /erase           {"confirm": true}: erase everything
//
// Mount it under a prefix with http.StripPrefix. Answers: 401 without an
// authenticated subject, 403 when the body names someone else, 400 for
// malformed JSON or a missing confirmation, 413 for an oversized body,
// 405 for another method. Every access and erasure is audited and tracked
// as a request completed on the spot.
func (s *Service) Handler(cfg HandlerConfig) http.Handler {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Filename == "" {
		cfg.Filename = "personal-data.json"
	}
	h := &handler{s: s, cfg: cfg}
	mux := http.NewServeMux()
	mux.Handle("/export", h.guard("GET, POST", h.export))
	mux.Handle("/export/summary", h.guard("GET, POST", h.summary))
	mux.Handle("/erase", h.guard("POST", h.erase))
	return mux
}

// handler serves the subject-only endpoints of Service.Handler.
type handler struct {
	s   *Service
	cfg HandlerConfig
}

type subjectHandler func(w http.ResponseWriter, r *http.Request, subject string, body requestBody)

// guard admits a request with one of methods, an authenticated subject
// and a body that names nobody else; it answers 405, 401, 413, 400 or 403
// otherwise.
func (h *handler) guard(methods string, next subjectHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !slices.Contains(strings.Split(methods, ", "), r.Method) {
			w.Header().Set("Allow", methods)
			jsonError(w, http.StatusMethodNotAllowed, "method not allowed")
			return
		}
		subject, ok := "", false
		if h.cfg.Subject != nil {
			subject, ok = h.cfg.Subject(r)
		}
		if !ok || subject == "" {
			jsonError(w, http.StatusUnauthorized, "authentication required")
			return
		}
		body, ok := h.readBody(w, r)
		if !ok {
			return
		}
		for _, named := range []string{body.Subject, body.Email} {
			if named == "" || named == subject {
				continue
			}
			if h.cfg.Aliases == nil || !slices.Contains(h.cfg.Aliases(r.Context(), subject), named) {
				jsonError(w, http.StatusForbidden, "you can only request your own data")
				return
			}
		}
		next(w, r, subject, body)
	}
}

// readBody decodes an optional JSON body of a POST, strictly and within
// MaxBody; false means the error answer was written.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) (requestBody, bool) {
	var body requestBody
	if r.Body == nil || r.Method != http.MethodPost {
		return body, true
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			jsonError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return body, false
		}
		jsonError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return body, false
	}
	return body, true
}

func (h *handler) export(w http.ResponseWriter, r *http.Request, subject string, _ requestBody) {
	req, err := h.s.OpenRequest(r.Context(), KindAccess, subject)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "could not record the request")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+h.cfg.Filename+`"`)
	w.Header().Set("Cache-Control", "no-store")
	if _, err := h.s.Export(r.Context(), w, subject, "self-service"); err != nil {
		h.s.cfg.Logger.ErrorContext(r.Context(), "dsar: export failed mid-stream", "err", err)
		// The status is sent: abort the connection so the client sees a
		// failed download, never a truncated file that looks whole.
		panic(http.ErrAbortHandler)
	}
	_ = h.s.CompleteRequest(r.Context(), req.ID, StatusCompleted, "self-service export")
}

func (h *handler) summary(w http.ResponseWriter, r *http.Request, subject string, _ requestBody) {
	sum, err := h.s.Summary(r.Context(), subject)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "could not summarise your data")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": subject, "records": sum})
}

func (h *handler) erase(w http.ResponseWriter, r *http.Request, subject string, body requestBody) {
	if !body.Confirm {
		jsonError(w, http.StatusBadRequest, `erasure needs {"confirm": true}`)
		return
	}
	req, err := h.s.OpenRequest(r.Context(), KindErasure, subject)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "could not record the request")
		return
	}
	rep, err := h.s.Erase(r.Context(), subject, "self-service")
	if err != nil {
		h.s.cfg.Logger.ErrorContext(r.Context(), "dsar: erasure failed", "err", err)
		jsonError(w, http.StatusInternalServerError, "erasure failed; nothing was half-erased in transactional sources, please retry")
		return
	}
	_ = h.s.CompleteRequest(r.Context(), req.ID, StatusCompleted, "self-service erasure")
	writeJSON(w, http.StatusOK, rep)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpx.WriteJSON(w, status, v) }

func jsonError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
