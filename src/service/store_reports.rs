//! What the status pages read beyond attempts (schema version 4): what each
//! run of an attempt reported (its flow and step, its conflict report), and
//! each feed source's polls. Kept apart from the store's core so its tables
//! and their queries read as one piece.

use anyhow::Result;
use rusqlite::params;

use super::{parse, stored_json, Store, MAX_LIMIT};
use crate::core::secrets::scrub_held;
use crate::engine::conflict::ConflictReport;
use crate::service::attempt::{parse_result_status, RunObservation};

/// What one run of an attempt reported, as the status pages show it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub attempt_id: String,
    pub run_id: String,
    pub event_id: String,
    pub flow: Option<String>,
    pub step: Option<String>,
    /// `queued`, `running` or a result status.
    pub status: String,
    pub conflict: Option<ConflictReport>,
}

/// The polls of one feed source, by every poller sharing the database.
#[derive(Debug, Clone, PartialEq)]
pub struct PollRecord {
    pub source_id: String,
    pub runs: i64,
    pub failures: i64,
    pub last_poll_at: String,
    /// The last failure and when; it is the last poll's when the times match.
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
}

impl PollRecord {
    /// Whether the latest poll failed.
    pub fn failing(&self) -> bool {
        self.last_error_at.as_deref() == Some(self.last_poll_at.as_str())
    }
}

impl Store {
    /// Records what `runs` of attempt `attempt_id` reported, in one
    /// transaction. A run seen again takes its new status; its conflict
    /// report is replaced whenever it has a result (a run that now has
    /// none lost it), and kept while it is still queued or running.
    pub fn record_runs(&self, attempt_id: &str, event_id: &str, runs: &[RunObservation], now: &str) -> Result<()> {
        if runs.is_empty() {
            return Ok(());
        }
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO run_reports (attempt_id, run_id, event_id, flow, step, status, conflict, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT(attempt_id, run_id) DO UPDATE SET status = excluded.status,
                 flow = coalesce(excluded.flow, flow), step = coalesce(excluded.step, step),
                 conflict = CASE WHEN ?9 THEN excluded.conflict ELSE conflict END,
                 recorded_at = excluded.recorded_at",
            )?;
            for run in runs {
                let conflict = run.conflict.as_deref().map(stored_json).transpose()?;
                let decided = parse_result_status(&run.status).is_some();
                upsert.execute(params![
                    attempt_id, run.run_id, event_id, run.flow, run.step, run.status, conflict, now, decided
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The runs of every attempt of `event_id`, newest attempt first, each
    /// attempt's runs in the order they were first seen.
    pub fn runs_of_event(&self, event_id: &str) -> Result<Vec<RunRecord>> {
        self.run_records(Some(event_id), false, (MAX_LIMIT * 10) as i64)
    }

    /// The runs that name their flow, newest attempt first, at most `limit`.
    pub fn flow_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.run_records(None, true, limit.clamp(1, MAX_LIMIT * 10) as i64)
    }

    fn run_records(&self, event_id: Option<&str>, with_flow: bool, limit: i64) -> Result<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT r.attempt_id, r.run_id, r.event_id, r.flow, r.step, r.status, r.conflict
             FROM run_reports r LEFT JOIN attempts a ON a.id = r.attempt_id
             WHERE (?1 IS NULL OR r.event_id = ?1) AND (NOT ?2 OR r.flow IS NOT NULL)
             ORDER BY a.seq DESC, r.rowid ASC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![event_id, with_flow, limit], |row| {
            Ok((
                RunRecord {
                    attempt_id: row.get(0)?,
                    run_id: row.get(1)?,
                    event_id: row.get(2)?,
                    flow: row.get(3)?,
                    step: row.get(4)?,
                    status: row.get(5)?,
                    conflict: None,
                },
                row.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut record, conflict) = row?;
            record.conflict = conflict.map(|json| parse(&json)).transpose()?;
            out.push(record);
        }
        Ok(out)
    }

    /// Counts one poll of `source_id` at `at`, and its error if it failed.
    pub fn record_poll(&self, source_id: &str, at: &str, error: Option<&str>) -> Result<()> {
        let error = error.map(scrub_held);
        self.conn.execute(
            "INSERT INTO feed_polls (source_id, runs, failures, last_poll_at, last_error, last_error_at)
             VALUES (?1, 1, ?2, ?3, ?4, CASE WHEN ?4 IS NULL THEN NULL ELSE ?3 END)
             ON CONFLICT(source_id) DO UPDATE SET runs = runs + 1, failures = failures + excluded.failures,
             last_poll_at = excluded.last_poll_at,
             last_error = coalesce(excluded.last_error, last_error),
             last_error_at = coalesce(excluded.last_error_at, last_error_at)",
            params![source_id, error.is_some() as i64, at, error],
        )?;
        Ok(())
    }

    /// Every source's polls, by source id.
    pub fn polls(&self) -> Result<Vec<PollRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT source_id, runs, failures, last_poll_at, last_error, last_error_at FROM feed_polls
             ORDER BY source_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(PollRecord {
                source_id: row.get(0)?,
                runs: row.get(1)?,
                failures: row.get(2)?,
                last_poll_at: row.get(3)?,
                last_error: row.get(4)?,
                last_error_at: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
