-- The scheduled backups' record, one row shared by every replica: the
-- newest backup any of them made (by any process: scheduled or the backup
-- command), when a failed one may be tried again, and which replica holds
-- the lease of the one in progress. Replicas with LEVQOR_BACKUP_INTERVAL
-- take turns through it: the database is backed up once per interval,
-- whichever replica does it. Times are fixed-width RFC 3339 text in UTC
-- ('' for none), so text order is time order.
CREATE TABLE backup_schedule (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    last_at TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    last_by TEXT NOT NULL DEFAULT '',
    retry_at TEXT NOT NULL DEFAULT '',
    lease_until TEXT NOT NULL DEFAULT '',
    holder TEXT NOT NULL DEFAULT ''
);
INSERT INTO backup_schedule (id) VALUES (1);
