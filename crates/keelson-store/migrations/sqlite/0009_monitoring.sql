-- Monitoring: monitors (their spec kept whole as JSON), the reports they and ad-hoc comparisons
-- wrote (the JSON and HTML themselves live in the artifact store), and alerts. At most one alert
-- per monitor and rule is firing at a time; it counts repeats until the rule passes again.
CREATE TABLE monitors (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    next_run BIGINT,
    last_run BIGINT,
    last_report TEXT,
    last_error TEXT
);
CREATE INDEX monitors_due ON monitors (enabled, next_run);

CREATE TABLE monitor_reports (
    id TEXT PRIMARY KEY,
    monitor TEXT,
    created BIGINT NOT NULL,
    window_start BIGINT,
    window_end BIGINT,
    summary TEXT NOT NULL,
    json_key TEXT NOT NULL,
    html_key TEXT NOT NULL
);
CREATE INDEX monitor_reports_monitor ON monitor_reports (monitor, created);

CREATE TABLE monitor_alerts (
    id TEXT PRIMARY KEY,
    monitor TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
    title TEXT NOT NULL,
    details TEXT NOT NULL,
    report_id TEXT NOT NULL,
    first_fired BIGINT NOT NULL,
    last_fired BIGINT NOT NULL,
    occurrences BIGINT NOT NULL,
    last_notified BIGINT,
    resolved_at BIGINT
);
CREATE UNIQUE INDEX monitor_alerts_firing ON monitor_alerts (monitor, rule) WHERE status = 'firing';
CREATE INDEX monitor_alerts_by_time ON monitor_alerts (monitor, last_fired);
