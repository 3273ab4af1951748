//! SQL for monitoring: monitors (spec kept whole as JSON text), the reports they wrote, and
//! alerts with their de-duplication (one firing alert per monitor and rule, counting repeats) and
//! notification cool-down.

use crate::backend::Store;
use crate::error::StoreError;
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorRecord {
    pub name: String,
    pub spec: Value,
    pub enabled: bool,
    pub created: i64,
    pub updated: i64,
    pub next_run: Option<i64>,
    pub last_run: Option<i64>,
    pub last_report: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRecord {
    pub id: String,
    pub monitor: Option<String>,
    pub created: i64,
    pub window_start: Option<i64>,
    pub window_end: Option<i64>,
    pub summary: Value,
    pub json_key: String,
    pub html_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    pub id: String,
    pub monitor: String,
    pub rule: String,
    pub severity: String,
    pub status: String,
    pub title: String,
    pub details: Value,
    pub report_id: String,
    pub first_fired: i64,
    pub last_fired: i64,
    pub occurrences: i64,
    pub last_notified: Option<i64>,
    pub resolved_at: Option<i64>,
}

/// A rule that failed in a run.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredRule {
    pub rule: String,
    pub severity: String,
    pub title: String,
    pub details: Value,
}

/// What firing did: the alert as stored, and whether its channels are due a notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub alert: AlertRecord,
    pub notify: bool,
    /// A new alert, not a repeat of a firing one.
    pub new: bool,
}

fn json_text(value: &Value) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::InvalidArgument(format!("not storable as JSON: {e}")))
}

fn json_column(row: &AnyRow, column: &str) -> Result<Value, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn monitor_from_row(row: &AnyRow) -> Result<MonitorRecord, StoreError> {
    Ok(MonitorRecord {
        name: row.try_get("name")?,
        spec: json_column(row, "spec")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
        next_run: row.try_get("next_run")?,
        last_run: row.try_get("last_run")?,
        last_report: row.try_get("last_report")?,
        last_error: row.try_get("last_error")?,
    })
}

fn report_from_row(row: &AnyRow) -> Result<ReportRecord, StoreError> {
    Ok(ReportRecord {
        id: row.try_get("id")?,
        monitor: row.try_get("monitor")?,
        created: row.try_get("created")?,
        window_start: row.try_get("window_start")?,
        window_end: row.try_get("window_end")?,
        summary: json_column(row, "summary")?,
        json_key: row.try_get("json_key")?,
        html_key: row.try_get("html_key")?,
    })
}

fn alert_from_row(row: &AnyRow) -> Result<AlertRecord, StoreError> {
    Ok(AlertRecord {
        id: row.try_get("id")?,
        monitor: row.try_get("monitor")?,
        rule: row.try_get("rule")?,
        severity: row.try_get("severity")?,
        status: row.try_get("status")?,
        title: row.try_get("title")?,
        details: json_column(row, "details")?,
        report_id: row.try_get("report_id")?,
        first_fired: row.try_get("first_fired")?,
        last_fired: row.try_get("last_fired")?,
        occurrences: row.try_get("occurrences")?,
        last_notified: row.try_get("last_notified")?,
        resolved_at: row.try_get("resolved_at")?,
    })
}

fn monitor_not_found(name: &str) -> StoreError {
    StoreError::NotFound(format!("monitor `{name}` does not exist"))
}

impl Store {
    pub async fn create_monitor(
        &self,
        name: &str,
        spec: &Value,
        next_run: Option<i64>,
    ) -> Result<MonitorRecord, StoreError> {
        let now = self.now();
        sqlx::query(
            "INSERT INTO monitors (name, spec, enabled, created, updated, next_run) VALUES ($1, $2, 1, $3, $4, $5)",
        )
        .bind(name)
        .bind(json_text(spec)?)
        .bind(now)
        .bind(now)
        .bind(next_run)
        .execute(&self.writer)
        .await
        .map_err(StoreError::from)
        .map_err(|e| {
            if e.is_unique_violation() {
                StoreError::AlreadyExists(format!("monitor `{name}` already exists"))
            } else {
                e
            }
        })?;
        self.get_monitor_from_writer(name).await
    }

    /// Replaces a monitor's spec and schedule.
    pub async fn update_monitor(
        &self,
        name: &str,
        spec: &Value,
        enabled: bool,
        next_run: Option<i64>,
    ) -> Result<MonitorRecord, StoreError> {
        let updated =
            sqlx::query("UPDATE monitors SET spec = $1, enabled = $2, next_run = $3, updated = $4 WHERE name = $5")
                .bind(json_text(spec)?)
                .bind(i64::from(enabled))
                .bind(next_run)
                .bind(self.now())
                .bind(name)
                .execute(&self.writer)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(monitor_not_found(name));
        }
        self.get_monitor_from_writer(name).await
    }

    async fn get_monitor_from_writer(&self, name: &str) -> Result<MonitorRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM monitors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.writer)
            .await?
            .ok_or_else(|| monitor_not_found(name))?;
        monitor_from_row(&row)
    }

    pub async fn get_monitor(&self, name: &str) -> Result<MonitorRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM monitors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| monitor_not_found(name))?;
        monitor_from_row(&row)
    }

    pub async fn list_monitors(&self) -> Result<Vec<MonitorRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM monitors ORDER BY name").fetch_all(&self.reader).await?;
        rows.iter().map(monitor_from_row).collect()
    }

    /// Deletes a monitor; its reports and alerts stay for the audit trail.
    pub async fn delete_monitor(&self, name: &str) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM monitors WHERE name = $1").bind(name).execute(&self.writer).await?;
        if deleted.rows_affected() == 0 {
            return Err(monitor_not_found(name));
        }
        Ok(())
    }

    /// Enabled monitors whose next run is due.
    pub async fn due_monitors(&self, now: i64) -> Result<Vec<MonitorRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM monitors WHERE enabled = 1 AND next_run IS NOT NULL AND next_run <= $1 ORDER BY next_run",
        )
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        rows.iter().map(monitor_from_row).collect()
    }

    /// Moves a due monitor's next run from `expected` to `next`; false when another scheduler
    /// (a second replica) moved it first, so each due run is enqueued once.
    pub async fn advance_monitor(&self, name: &str, expected: i64, next: i64) -> Result<bool, StoreError> {
        let updated = sqlx::query("UPDATE monitors SET next_run = $1 WHERE name = $2 AND next_run = $3")
            .bind(next)
            .bind(name)
            .bind(expected)
            .execute(&self.writer)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Notes a finished run: the report it wrote, or the error that stopped it.
    pub async fn record_monitor_run(
        &self,
        name: &str,
        ran_at: i64,
        report: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE monitors SET last_run = $1, last_report = COALESCE($2, last_report), last_error = $3 WHERE name = $4")
            .bind(ran_at)
            .bind(report)
            .bind(error)
            .bind(name)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn insert_report(&self, report: &ReportRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO monitor_reports (id, monitor, created, window_start, window_end, summary, json_key, html_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&report.id)
        .bind(&report.monitor)
        .bind(report.created)
        .bind(report.window_start)
        .bind(report.window_end)
        .bind(json_text(&report.summary)?)
        .bind(&report.json_key)
        .bind(&report.html_key)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn get_report(&self, id: &str) -> Result<ReportRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM monitor_reports WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("report `{id}` does not exist")))?;
        report_from_row(&row)
    }

    /// Newest first.
    pub async fn list_reports(&self, monitor: Option<&str>, limit: i64) -> Result<Vec<ReportRecord>, StoreError> {
        let rows = match monitor {
            Some(monitor) => {
                sqlx::query("SELECT * FROM monitor_reports WHERE monitor = $1 ORDER BY created DESC, id DESC LIMIT $2")
                    .bind(monitor)
                    .bind(limit)
                    .fetch_all(&self.reader)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM monitor_reports ORDER BY created DESC, id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.reader)
                    .await?
            }
        };
        rows.iter().map(report_from_row).collect()
    }

    /// Fires `rule` of `monitor`: a new alert, or one more occurrence of the one already firing.
    /// Its channels are due a notification when the alert is new or its last notification is at
    /// least `cooldown_ms` old.
    pub async fn fire_alert(
        &self,
        monitor: &str,
        fired: &FiredRule,
        report_id: &str,
        cooldown_ms: i64,
    ) -> Result<Fired, StoreError> {
        let now = self.now();
        // A concurrent run of the same monitor may insert first (the unique index refuses the
        // second insert); the retry then finds its alert and counts an occurrence.
        for _ in 0..2 {
            let mut tx = self.writer.begin_with(self.backend.begin_write()).await?;
            let existing =
                sqlx::query("SELECT * FROM monitor_alerts WHERE monitor = $1 AND rule = $2 AND status = 'firing'")
                    .bind(monitor)
                    .bind(&fired.rule)
                    .fetch_optional(&mut *tx)
                    .await?;
            let (id, notify, new) = match existing {
                Some(row) => {
                    let alert = alert_from_row(&row)?;
                    let notify = alert.last_notified.is_none_or(|at| now - at >= cooldown_ms);
                    sqlx::query(
                        "UPDATE monitor_alerts SET severity = $1, title = $2, details = $3, report_id = $4, last_fired = $5, \
                         occurrences = occurrences + 1, last_notified = CASE WHEN $6 = 1 THEN $7 ELSE last_notified END \
                         WHERE id = $8",
                    )
                    .bind(&fired.severity)
                    .bind(&fired.title)
                    .bind(json_text(&fired.details)?)
                    .bind(report_id)
                    .bind(now)
                    .bind(i64::from(notify))
                    .bind(now)
                    .bind(&alert.id)
                    .execute(&mut *tx)
                    .await?;
                    (alert.id, notify, false)
                }
                None => {
                    let id = uuid::Uuid::now_v7().simple().to_string();
                    let inserted = sqlx::query(
                        "INSERT INTO monitor_alerts (id, monitor, rule, severity, status, title, details, report_id, \
                         first_fired, last_fired, occurrences, last_notified) \
                         VALUES ($1, $2, $3, $4, 'firing', $5, $6, $7, $8, $9, 1, $10)",
                    )
                    .bind(&id)
                    .bind(monitor)
                    .bind(&fired.rule)
                    .bind(&fired.severity)
                    .bind(&fired.title)
                    .bind(json_text(&fired.details)?)
                    .bind(report_id)
                    .bind(now)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from);
                    match inserted {
                        Err(e) if e.is_unique_violation() => continue,
                        Err(e) => return Err(e),
                        Ok(_) => (id, true, true),
                    }
                }
            };
            tx.commit().await?;
            let alert = self.get_alert_from_writer(&id).await?;
            return Ok(Fired { alert, notify, new });
        }
        Err(StoreError::Conflict(format!("alert `{}` of monitor `{monitor}` kept changing; try again", fired.rule)))
    }

    /// Resolves the firing alerts of `monitor` whose rule is not in `still_failing`.
    pub async fn resolve_alerts(
        &self,
        monitor: &str,
        still_failing: &[String],
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let now = self.now();
        let firing = sqlx::query("SELECT * FROM monitor_alerts WHERE monitor = $1 AND status = 'firing'")
            .bind(monitor)
            .fetch_all(&self.writer)
            .await?;
        let mut resolved = Vec::new();
        for row in &firing {
            let mut alert = alert_from_row(row)?;
            if still_failing.contains(&alert.rule) {
                continue;
            }
            sqlx::query(
                "UPDATE monitor_alerts SET status = 'resolved', resolved_at = $1 WHERE id = $2 AND status = 'firing'",
            )
            .bind(now)
            .bind(&alert.id)
            .execute(&self.writer)
            .await?;
            alert.status = "resolved".into();
            alert.resolved_at = Some(now);
            resolved.push(alert);
        }
        Ok(resolved)
    }

    async fn get_alert_from_writer(&self, id: &str) -> Result<AlertRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM monitor_alerts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.writer)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("alert `{id}` does not exist")))?;
        alert_from_row(&row)
    }

    pub async fn get_alert(&self, id: &str) -> Result<AlertRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM monitor_alerts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("alert `{id}` does not exist")))?;
        alert_from_row(&row)
    }

    /// The report each monitor last wrote, for every monitor that has one.
    pub async fn latest_monitor_reports(&self) -> Result<Vec<ReportRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT r.* FROM monitor_reports r JOIN monitors m ON m.last_report = r.id ORDER BY r.monitor")
                .fetch_all(&self.reader)
                .await?;
        rows.iter().map(report_from_row).collect()
    }

    /// Firing alerts per monitor (monitors without any are left out).
    pub async fn firing_alert_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT monitor, COUNT(*) AS n FROM monitor_alerts WHERE status = 'firing' GROUP BY monitor ORDER BY monitor",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(|row| Ok((row.try_get("monitor")?, row.try_get("n")?))).collect()
    }

    /// Newest first; optionally one monitor's, optionally one status.
    pub async fn list_alerts(
        &self,
        monitor: Option<&str>,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM monitor_alerts WHERE ($1 IS NULL OR monitor = $1) AND ($2 IS NULL OR status = $2) \
             ORDER BY last_fired DESC, id DESC LIMIT $3",
        )
        .bind(monitor)
        .bind(status)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(alert_from_row).collect()
    }
}
