package alert

import (
	"strconv"
)

// SystemDown reports that a component stopped working.
func SystemDown(component string, cause error) Alert {
	a := Alert{Severity: SeverityCritical, Title: component + " is down", Key: "down|" + component}
	if cause != nil {
		a.Message = cause.Error()
	}
	return a
}

// Recovered reports that a component works again.
func Recovered(component string) Alert {
	return Alert{Severity: SeveritySuccess, Title: component + " recovered", Key: "recovered|" + component}
}

// SpendBreach reports daily spend on day (e.g. "2026-11-25") crossing a
// threshold percentage of the limit: critical at 100% and over, warning
// below. The de-duplication key holds the day, so a Dedup interval that
// spans midnight never swallows the next day's first alert.
func SpendBreach(day, spent, limit string, percent int) Alert {
	sev := SeverityWarning
	if percent >= 100 {
		sev = SeverityCritical
	}
	return Alert{
		Severity: sev,
		Title:    "Daily spend at " + strconv.Itoa(percent) + "% of limit",
		Fields:   []Field{{"Day", day}, {"Spent", spent}, {"Limit", limit}},
		Key:      "spend|" + day + "|" + strconv.Itoa(percent),
	}
}

// SLOBreach reports a service level objective being missed.
func SLOBreach(slo, observed, objective string) Alert {
	return Alert{
		Severity: SeverityCritical,
		Title:    "SLO breach: " + slo,
		Fields:   []Field{{"Observed", observed}, {"Objective", objective}},
		Key:      "slo|" + slo,
	}
}

// PayoutDone reports a completed partner payout.
func PayoutDone(partner, amount, reference string) Alert {
	return Alert{
		Severity: SeveritySuccess,
		Title:    "Payout sent to " + partner,
		Fields:   []Field{{"Amount", amount}, {"Reference", reference}},
		Key:      "payout|" + reference,
	}
}
