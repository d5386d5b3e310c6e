// Package dsar answers GDPR data-subject requests: access and portability
// (Art. 15 and 20) and erasure (Art. 17), over the Sources that hold
// personal data.
//
// # Quick start
//
//	orders, _ := dsar.NewSQLSource(dsar.SQLSourceConfig{DB: db, Table: "orders", SubjectColumn: "user_id", Columns: []string{"id", "total"}})
//	svc, _ := dsar.New(ctx, dsar.Config{Sources: []dsar.Source{orders}, DB: db, SubjectKey: key})
//	_, err := svc.Export(ctx, w, userID, "self-service") // Art. 15/20
//	_, err = svc.Erase(ctx, userID, "self-service")     // Art. 17
//
// # Design
//
// A Source is a named dataset that can export and erase one subject's
// records; SQLSource is ready for a table (subject column, exported columns,
// erase by delete, null or keyed hash — for rows the law says to keep,
// like invoices). Service.Export streams one JSON document with the
// controller's Art. 15 information, every record and a summary;
// Service.Erase erases across all sources, in one transaction per
// database, idempotently, and writes an audit entry (who, when, which
// sources, rows) that names the subject only by a keyed hash. Requests are
// tracked against the Art. 12(3) one-month deadline so overdue ones can be
// listed.
//
// Handler serves the authenticated subject only, taken from a function the
// caller supplies (never an address from the request body), so nobody
// can ask for someone else's data.
package dsar
