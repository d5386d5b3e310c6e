package secheaders

import (
	"fmt"
	"strings"
)

// Directive is a CSP directive name.
type Directive string

// Fetch, document and navigation directives (CSP Level 3).
const (
	DefaultSrc     Directive = "default-src"
	ScriptSrc      Directive = "script-src"
	ScriptSrcElem  Directive = "script-src-elem"
	ScriptSrcAttr  Directive = "script-src-attr"
	StyleSrc       Directive = "style-src"
	StyleSrcElem   Directive = "style-src-elem"
	StyleSrcAttr   Directive = "style-src-attr"
	ImgSrc         Directive = "img-src"
	FontSrc        Directive = "font-src"
	ConnectSrc     Directive = "connect-src"
	MediaSrc       Directive = "media-src"
	ObjectSrc      Directive = "object-src"
	FrameSrc       Directive = "frame-src"
	ChildSrc       Directive = "child-src"
	WorkerSrc      Directive = "worker-src"
	ManifestSrc    Directive = "manifest-src"
	BaseURI        Directive = "base-uri"
	FormAction     Directive = "form-action"
	FrameAncestors Directive = "frame-ancestors"
)

// Source is one CSP source expression.
type Source string

// Keyword and scheme sources.
const (
	Self           Source = "'self'"
	None           Source = "'none'"
	StrictDynamic  Source = "'strict-dynamic'"
	UnsafeInline   Source = "'unsafe-inline'"
	UnsafeEval     Source = "'unsafe-eval'"
	WasmUnsafeEval Source = "'wasm-unsafe-eval'"
	ReportSample   Source = "'report-sample'"
	Data           Source = "data:"
	Blob           Source = "blob:"
	HTTPS          Source = "https:"
)

// CSP is an immutable Content-Security-Policy. Every method returns a new
// policy, so one base policy can be refined per route without copying or
// changing it.
type CSP struct {
	directives []directive
	nonceIn    []Directive
	reportURI  string
	reportTo   string
	upgrade    bool
}

type directive struct {
	name    Directive
	sources []Source
}

// DefaultCSP is the zero-config policy: everything from the page's own
// origin, no plugins, no framing, no <base> or form hijacking, scripts and
// styles only with the per-request nonce, and insecure requests upgraded.
func DefaultCSP() CSP {
	return CSP{}.
		With(DefaultSrc, Self).
		With(BaseURI, Self).
		With(ObjectSrc, None).
		With(FrameAncestors, None).
		With(FormAction, Self).
		With(ScriptSrc, Self).
		With(ScriptSrcAttr, None).
		With(StyleSrc, Self).
		With(ImgSrc, Self, Data).
		With(FontSrc, Self).
		With(ConnectSrc, Self).
		WithNonce(ScriptSrc, StyleSrc).
		UpgradeInsecureRequests(true)
}

// APICSP is the policy for API responses (Config.API): default-src 'none';
// frame-ancestors 'none'. A JSON response rendered by mistake loads
// nothing and cannot be framed.
func APICSP() CSP {
	return CSP{}.With(DefaultSrc, None).With(FrameAncestors, None)
}

// With sets directive d to exactly the given sources, replacing any earlier
// value of d.
func (c CSP) With(d Directive, sources ...Source) CSP {
	out := c.clone()
	for i := range out.directives {
		if out.directives[i].name == d {
			out.directives[i].sources = append([]Source(nil), sources...)
			return out
		}
	}
	out.directives = append(out.directives, directive{d, append([]Source(nil), sources...)})
	return out
}

// Add appends sources to directive d (creating it if absent).
func (c CSP) Add(d Directive, sources ...Source) CSP {
	for _, dir := range c.directives {
		if dir.name == d {
			return c.With(d, append(append([]Source(nil), dir.sources...), sources...)...)
		}
	}
	return c.With(d, sources...)
}

// Without removes directive d.
func (c CSP) Without(d Directive) CSP {
	out := c.clone()
	out.directives = out.directives[:0]
	for _, dir := range c.directives {
		if dir.name != d {
			out.directives = append(out.directives, dir)
		}
	}
	out.nonceIn = nil
	for _, n := range c.nonceIn {
		if n != d {
			out.nonceIn = append(out.nonceIn, n)
		}
	}
	return out
}

// WithNonce adds the per-request 'nonce-…' source to the given directives
// (which must be present). It replaces the earlier nonce directives.
func (c CSP) WithNonce(ds ...Directive) CSP {
	out := c.clone()
	out.nonceIn = append([]Directive(nil), ds...)
	return out
}

// ReportURI sets the legacy report-uri directive.
func (c CSP) ReportURI(uri string) CSP {
	out := c.clone()
	out.reportURI = uri
	return out
}

// ReportTo sets the report-to directive to a Reporting-Endpoints group name.
func (c CSP) ReportTo(group string) CSP {
	out := c.clone()
	out.reportTo = group
	return out
}

// UpgradeInsecureRequests turns the upgrade-insecure-requests directive on or off.
func (c CSP) UpgradeInsecureRequests(on bool) CSP {
	out := c.clone()
	out.upgrade = on
	return out
}

// UsesNonce reports whether the policy carries a per-request nonce.
func (c CSP) UsesNonce() bool { return len(c.nonceIn) > 0 }

func (c CSP) clone() CSP {
	out := c
	out.directives = append([]directive(nil), c.directives...)
	out.nonceIn = append([]Directive(nil), c.nonceIn...)
	return out
}

// nonceMark stands where the nonce goes until the header is split into
// its fixed parts; it cannot occur in a validated policy.
const nonceMark = "\x00"

// compile validates the policy and returns its header value split around
// the nonce positions (one part if it uses no nonce).
func (c CSP) compile() ([]string, error) {
	if len(c.directives) == 0 {
		return nil, fmt.Errorf("secheaders: empty CSP")
	}
	seen := map[Directive]bool{}
	var b strings.Builder
	for _, d := range c.directives {
		if !validToken(string(d.name)) {
			return nil, fmt.Errorf("secheaders: invalid CSP directive name %q", d.name)
		}
		if len(d.sources) == 0 {
			return nil, fmt.Errorf("secheaders: CSP directive %s has no sources (use None)", d.name)
		}
		seen[d.name] = true
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(string(d.name))
		for _, s := range d.sources {
			if err := validSource(s); err != nil {
				return nil, fmt.Errorf("secheaders: CSP %s: %w", d.name, err)
			}
			if s == None && len(d.sources) > 1 {
				return nil, fmt.Errorf("secheaders: CSP %s: 'none' must stand alone", d.name)
			}
			b.WriteString(" " + string(s))
		}
		for _, n := range c.nonceIn {
			if n == d.name {
				if d.sources[0] == None {
					return nil, fmt.Errorf("secheaders: CSP %s is 'none' and cannot take a nonce", d.name)
				}
				b.WriteString(" 'nonce-" + nonceMark + "'")
			}
		}
	}
	for _, n := range c.nonceIn {
		if !seen[n] {
			return nil, fmt.Errorf("secheaders: nonce requested for absent CSP directive %s", n)
		}
	}
	if c.upgrade {
		b.WriteString("; upgrade-insecure-requests")
	}
	if c.reportURI != "" {
		if err := validSource(Source(c.reportURI)); err != nil || strings.HasPrefix(c.reportURI, "'") {
			return nil, fmt.Errorf("secheaders: invalid CSP report-uri %q", c.reportURI)
		}
		b.WriteString("; report-uri " + c.reportURI)
	}
	if c.reportTo != "" {
		if !validToken(c.reportTo) {
			return nil, fmt.Errorf("secheaders: invalid CSP report-to group %q", c.reportTo)
		}
		b.WriteString("; report-to " + c.reportTo)
	}
	return strings.Split(b.String(), nonceMark), nil
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// validSource rejects anything that could end a source list or directive
// (whitespace, ";" and ","), control bytes, and quoted keywords it does not
// know, so no value can smuggle extra policy.
func validSource(s Source) error {
	if s == "" {
		return fmt.Errorf("empty source")
	}
	for _, r := range string(s) {
		if r <= ' ' || r == ';' || r == ',' || r == 0x7f || r > 0x7e {
			return fmt.Errorf("source %q has a forbidden character %q", s, r)
		}
	}
	if strings.HasPrefix(string(s), "'") {
		switch s {
		case Self, None, StrictDynamic, UnsafeInline, UnsafeEval, WasmUnsafeEval, ReportSample, "'unsafe-hashes'", "'inline-speculation-rules'":
			return nil
		}
		if strings.HasPrefix(string(s), "'sha256-") || strings.HasPrefix(string(s), "'sha384-") || strings.HasPrefix(string(s), "'sha512-") {
			if strings.HasSuffix(string(s), "'") && len(s) > 9 {
				return nil
			}
		}
		return fmt.Errorf("unknown quoted source %q", s)
	}
	return nil
}
