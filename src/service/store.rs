//! Product state under `DATA_DIR`: one SQLite database, `patchmoi.sqlite3`,
//! holding events, dispatch records, maintenance attempts, what each run of
//! an attempt reported (its flow, its conflict report), feed cursors and
//! each feed source's polls.
//!
//! WAL journaling and a busy timeout let the daemon and a CLI call share it;
//! every multi-row change is one transaction, so a crash at any moment
//! leaves it consistent. The schema version lives in `user_version`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::core::secrets::scrub_held;
use crate::flow::event::FlowEvent;
use crate::service::attempt::{Attempt, AttemptStatus};
use crate::service::target::{DispatchRecord, DispatchStatus};
use crate::service::webhook::index_keys;

/// The database file inside `DATA_DIR`.
pub const DB_FILE: &str = "patchmoi.sqlite3";
const SCHEMA_VERSION: i64 = 4;
const SCHEMA: &str = "
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    received_at TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE TABLE dispatches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX dispatches_event ON dispatches(event_id);
CREATE TABLE attempts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX attempts_event ON attempts(event_id);
CREATE TABLE feed_cursors (
    source_id TEXT PRIMARY KEY,
    json TEXT NOT NULL
);
";

/// Version 2: who is dispatching an event, so two pollers never both do.
const SCHEMA_V2: &str = "
CREATE TABLE dispatch_claims (
    event_id TEXT PRIMARY KEY,
    claimed_at INTEGER NOT NULL
);
";

/// Version 3: GitHub webhook deliveries seen (a redelivery is answered,
/// not applied again; an older state of a check run or PR never overwrites
/// a newer one), and the keys a webhook finds its attempt by (ids, run
/// ids, candidate branches), so any attempt is found, not only recent ones.
const SCHEMA_V3: &str = "
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    object_key TEXT,
    object_time TEXT,
    attempt_id TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_object ON webhook_deliveries(object_key, object_time);
CREATE TABLE attempt_keys (
    key TEXT NOT NULL,
    attempt_seq INTEGER NOT NULL,
    PRIMARY KEY (key, attempt_seq)
) WITHOUT ROWID;
CREATE INDEX attempt_keys_attempt ON attempt_keys(attempt_seq);
";

/// Version 4: what each run of an attempt reported, for the status pages:
/// its flow and step (rows per flow, flow badges) and, when it stopped on a
/// conflict, the conflict report as the runner wrote it (patch, files,
/// hunks, culprit, survey); and each feed source's polls (how many, how
/// many failed, the last error). Older attempts have no rows until a sync
/// reads their runs again.
const SCHEMA_V4: &str = "
CREATE TABLE run_reports (
    attempt_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    flow TEXT,
    step TEXT,
    status TEXT NOT NULL,
    conflict TEXT,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (attempt_id, run_id)
);
CREATE INDEX run_reports_event ON run_reports(event_id);
CREATE INDEX run_reports_flow ON run_reports(flow);
CREATE TABLE feed_polls (
    source_id TEXT PRIMARY KEY,
    runs INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    last_poll_at TEXT NOT NULL,
    last_error TEXT,
    last_error_at TEXT
);
";

/// At most this many attempts share one webhook key (newest first).
const KEY_MATCHES: i64 = 20;

/// A claim older than this without a dispatch record belongs to a poll that
/// died mid-way: the event is owed its dispatch again.
const STALE_CLAIM_SECONDS: i64 = 600;

/// Listings return at most this many rows; `--limit`/`limit` clamp to it.
pub const MAX_LIMIT: usize = 500;
pub const DEFAULT_LIMIT: usize = 50;

/// Whether an event was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    Duplicate,
}

/// The result of looking up an attempt by id or prefix.
#[derive(Debug)]
pub enum Lookup<T> {
    Found(T),
    NotFound,
    /// More than one attempt starts with the prefix.
    Ambiguous(Vec<String>),
}

/// One verified GitHub webhook delivery.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-GitHub-Event`.
    pub kind: String,
    /// The object it describes (`check_run:<id>`…) and that object's own
    /// timestamp, to put deliveries of one object in order.
    pub object_key: Option<String>,
    pub object_time: Option<String>,
    pub received_at: String,
    /// The attempt keys it may belong to (see `webhook::lookup_keys`).
    pub keys: Vec<String>,
}

/// What recording a delivery did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// Seen before: nothing changed.
    Duplicate,
    /// Its object has a newer delivery already: nothing changed.
    Stale,
    /// Applied: the attempt it updated, if one matched.
    Applied(Option<Box<Attempt>>),
}

/// Where a feed stood at its last successful poll.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cursor {
    /// Entry ids seen so far, newest first, bounded.
    #[serde(default)]
    pub seen: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<String>,
}

/// `(status, count)` pairs, by status.
pub type StatusCounts = Vec<(String, i64)>;

/// Filters for listings.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub event_id: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<usize>,
}

impl Filter {
    fn limit(&self) -> i64 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT) as i64
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store> {
        let fresh = std::fs::read_dir(data_dir).map_or(true, |mut entries| entries.next().is_none());
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("failed to create data directory {}", data_dir.display()))?;
        // Like the runner's folder, DATA_DIR ignores itself: `./data` inside
        // a checkout must not show up in `git status`. Only a directory we
        // start: `--data-dir .` at a repository's root must not hide its files.
        let ignore = data_dir.join(".gitignore");
        if fresh && !ignore.exists() {
            std::fs::write(&ignore, "*\n").with_context(|| format!("failed to write {}", ignore.display()))?;
        }
        let path = data_dir.join(DB_FILE);
        let opened = Connection::open(&path).and_then(|conn| {
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Ok(conn)
        });
        let conn = opened.with_context(|| format!("failed to open database {} for writing", path.display()))?;
        let mut store = Store { conn, path };
        store.migrate().with_context(|| format!("failed to prepare database {}", store.path.display()))?;
        Ok(store)
    }

    /// For requests that only read: the database `open` prepared, without
    /// the migration's write transaction, so reads never wait for writers.
    pub fn open_for_reads(data_dir: &Path) -> Result<Store> {
        let path = data_dir.join(DB_FILE);
        let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .with_context(|| format!("failed to open database {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        check_version(version, &path)?;
        if version != SCHEMA_VERSION {
            bail!("database {} is at schema version {version}: open it for writing first", path.display());
        }
        Ok(Store { conn, path })
    }

    /// Writes the WAL back into the database file and closes it.
    pub fn close(self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.close().map_err(|(_, err)| err).context("failed to close the database")
    }

    /// For commands that only look: the database in `data_dir` when there is
    /// one, else an empty one in memory, so looking creates nothing on disk.
    /// A database at the current schema is opened read-only, and so still
    /// read where nothing can be written (a read-only or full data dir);
    /// an older one is migrated first, as `open` does.
    pub fn open_to_read(data_dir: &Path) -> Result<Store> {
        let path = data_dir.join(DB_FILE);
        if !path.exists() {
            let mut store = Store { conn: Connection::open_in_memory()?, path };
            store.migrate()?;
            return Ok(store);
        }
        let (conn, version) = open_read_only(&path)?;
        check_version(version, &path)?;
        if version != SCHEMA_VERSION {
            drop(conn);
            return Store::open(data_dir);
        }
        Ok(Store { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<()> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        check_version(version, &self.path)?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        if version < 1 {
            tx.execute_batch(SCHEMA)?;
        }
        if version < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        if version < 3 {
            tx.execute_batch(SCHEMA_V3)?;
            let stored: Vec<(i64, String)> = tx
                .prepare("SELECT seq, json FROM attempts")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (seq, json) in stored {
                index_attempt(&tx, seq, &parse(&json)?)?;
            }
        }
        if version < 4 {
            tx.execute_batch(SCHEMA_V4)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: `ok` when the file is sound.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }

    /// Stores an event unless one with its id exists.
    pub fn record_event(&self, event: &FlowEvent) -> Result<Recorded> {
        let changed = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO events (id, type, received_at, json) VALUES (?1, ?2, ?3, ?4)",
                params![event.id, event.kind, event.received_at, stored_json(event)?],
            )
            .with_context(|| self.writing(&format!("event {}", event.id)))?;
        Ok(if changed == 1 { Recorded::New } else { Recorded::Duplicate })
    }

    pub fn event(&self, id: &str) -> Result<Option<FlowEvent>> {
        let json: Option<String> =
            self.conn.query_row("SELECT json FROM events WHERE id = ?1", [id], |row| row.get(0)).optional()?;
        json.map(|text| parse(&text)).transpose()
    }

    /// Newest first; `filter.kind` is the event type.
    pub fn events(&self, filter: &Filter) -> Result<Vec<FlowEvent>> {
        let mut stmt =
            self.conn.prepare("SELECT json FROM events WHERE (?1 IS NULL OR type = ?1) ORDER BY seq DESC LIMIT ?2")?;
        let rows = stmt.query_map(params![filter.kind, filter.limit()], |row| row.get::<_, String>(0))?;
        rows.map(|row| parse(&row?)).collect()
    }

    /// Every stored event, oldest first.
    pub fn all_events(&self) -> Result<Vec<FlowEvent>> {
        let mut stmt = self.conn.prepare("SELECT json FROM events ORDER BY seq")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|row| parse(&row?)).collect()
    }

    /// How many events, dispatches and attempts these events have.
    pub fn records_of(&self, event_ids: &[String]) -> Result<(usize, usize, usize)> {
        let mut counts = (0, 0, 0);
        for id in event_ids {
            let count = |table: &str| -> Result<usize> {
                let sql = format!(
                    "SELECT count(*) FROM {table} WHERE {} = ?1",
                    if table == "events" { "id" } else { "event_id" }
                );
                Ok(self.conn.query_row(&sql, [id], |row| row.get::<_, i64>(0))? as usize)
            };
            counts.0 += count("events")?;
            counts.1 += count("dispatches")?;
            counts.2 += count("attempts")?;
        }
        Ok(counts)
    }

    /// Deletes these events with their dispatches, attempts, the attempts'
    /// webhook keys and what their runs reported, in one transaction.
    pub fn forget_events(&mut self, event_ids: &[String]) -> Result<()> {
        let what = self.writing(&format!("the removal of {} event(s)", event_ids.len()));
        let forget = |conn: &mut Connection| -> Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for id in event_ids {
                tx.execute(
                    "DELETE FROM attempt_keys WHERE attempt_seq IN (SELECT seq FROM attempts WHERE event_id = ?1)",
                    [id],
                )?;
                tx.execute("DELETE FROM attempts WHERE event_id = ?1", [id])?;
                tx.execute("DELETE FROM run_reports WHERE event_id = ?1", [id])?;
                tx.execute("DELETE FROM dispatches WHERE event_id = ?1", [id])?;
                tx.execute("DELETE FROM dispatch_claims WHERE event_id = ?1", [id])?;
                tx.execute("DELETE FROM events WHERE id = ?1", [id])?;
            }
            tx.commit()?;
            Ok(())
        };
        forget(&mut self.conn).context(what)
    }

    /// Stores a dispatch record and its new attempt together. Should another
    /// attempt already have the id (two dispatches in the same
    /// millisecond), the new one gets a `-2`, `-3`... suffix; returns it.
    pub fn record_dispatch(&mut self, record: &DispatchRecord, attempt: &Attempt) -> Result<Attempt> {
        let what = self.writing(&format!("a dispatch of event {}", record.event_id));
        self.insert_dispatch(record, attempt).map(|(_, attempt)| attempt).context(what)
    }

    /// `record_dispatch`, also returning the dispatch row, for
    /// [`Store::finish_dispatch`] or [`Store::forget_dispatch`].
    pub fn begin_dispatch(&mut self, record: &DispatchRecord, attempt: &Attempt) -> Result<(i64, Attempt)> {
        let what = self.writing(&format!("the start of a dispatch of event {}", record.event_id));
        self.insert_dispatch(record, attempt).context(what)
    }

    /// Writes the final version of dispatch row `seq` and of its attempt
    /// (re-read and changed by `change`), in one transaction.
    pub fn finish_dispatch(
        &mut self,
        seq: i64,
        record: &DispatchRecord,
        attempt_id: &str,
        change: impl FnOnce(&Attempt) -> Attempt,
    ) -> Result<Attempt> {
        let what = self.writing(&format!("the end of attempt {attempt_id}"));
        let finish = |conn: &mut Connection| -> Result<Attempt> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute(
                "UPDATE dispatches SET status = ?2, json = ?3 WHERE seq = ?1",
                params![seq, record.status.as_str(), stored_json(record)?],
            )?;
            let json: String =
                tx.query_row("SELECT json FROM attempts WHERE id = ?1", [attempt_id], |row| row.get(0))?;
            let next = change(&parse(&json)?);
            upsert_attempt(&tx, &next)?;
            tx.commit()?;
            Ok(next)
        };
        finish(&mut self.conn).context(what)
    }

    /// Removes dispatch row `seq` and its attempt (with what its runs
    /// reported): what `begin_dispatch` wrote for a run that turned out to
    /// be a lookup of a stored result.
    pub fn forget_dispatch(&mut self, seq: i64, attempt_id: &str) -> Result<()> {
        let what = self.writing(&format!("the removal of attempt {attempt_id}"));
        let forget = |conn: &mut Connection| -> Result<()> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute("DELETE FROM dispatches WHERE seq = ?1", [seq])?;
            tx.execute(
                "DELETE FROM attempt_keys WHERE attempt_seq IN (SELECT seq FROM attempts WHERE id = ?1)",
                [attempt_id],
            )?;
            tx.execute("DELETE FROM attempts WHERE id = ?1", [attempt_id])?;
            tx.execute("DELETE FROM run_reports WHERE attempt_id = ?1", [attempt_id])?;
            tx.commit()?;
            Ok(())
        };
        forget(&mut self.conn).context(what)
    }

    /// What an error writing `what` says: the database's path too.
    fn writing(&self, what: &str) -> String {
        format!("failed to write {what} to database {}", self.path.display())
    }

    fn insert_dispatch(&mut self, record: &DispatchRecord, attempt: &Attempt) -> Result<(i64, Attempt)> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let seq: i64 = tx.query_row(
            "INSERT INTO dispatches (event_id, status, created_at, json) VALUES (?1, ?2, ?3, ?4) RETURNING seq",
            params![record.event_id, record.status.as_str(), record.created_at, stored_json(record)?],
            |row| row.get(0),
        )?;
        let mut attempt = attempt.clone();
        let base = attempt.id.clone();
        for n in 2.. {
            let taken: bool =
                tx.query_row("SELECT EXISTS(SELECT 1 FROM attempts WHERE id = ?1)", [&attempt.id], |row| row.get(0))?;
            if !taken {
                break;
            }
            attempt.id = format!("{base}-{n}");
        }
        upsert_attempt(&tx, &attempt)?;
        tx.commit()?;
        Ok((seq, attempt))
    }

    /// Newest first; `filter.status` is a dispatch status.
    pub fn dispatches(&self, filter: &Filter) -> Result<Vec<DispatchRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT json FROM dispatches WHERE (?1 IS NULL OR event_id = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY seq DESC LIMIT ?3",
        )?;
        let rows =
            stmt.query_map(params![filter.event_id, filter.status, filter.limit()], |row| row.get::<_, String>(0))?;
        rows.map(|row| parse(&row?)).collect()
    }

    /// Newest first; `filter.status` is an attempt status.
    pub fn attempts(&self, filter: &Filter) -> Result<Vec<Attempt>> {
        let mut stmt = self.conn.prepare(
            "SELECT json FROM attempts WHERE (?1 IS NULL OR event_id = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY seq DESC LIMIT ?3",
        )?;
        let rows =
            stmt.query_map(params![filter.event_id, filter.status, filter.limit()], |row| row.get::<_, String>(0))?;
        rows.map(|row| parse(&row?)).collect()
    }

    /// An attempt by its id or any prefix of it that only it has.
    pub fn attempt(&self, id_or_prefix: &str) -> Result<Lookup<Attempt>> {
        let exact: Option<String> = self
            .conn
            .query_row("SELECT json FROM attempts WHERE id = ?1", [id_or_prefix], |row| row.get(0))
            .optional()?;
        if let Some(json) = exact {
            return Ok(Lookup::Found(parse(&json)?));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT id, json FROM attempts WHERE substr(id, 1, length(?1)) = ?1 ORDER BY seq DESC LIMIT 6")?;
        let rows: Vec<(String, String)> =
            stmt.query_map([id_or_prefix], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        match rows.len() {
            0 => Ok(Lookup::NotFound),
            1 => Ok(Lookup::Found(parse(&rows[0].1)?)),
            _ => Ok(Lookup::Ambiguous(rows.into_iter().map(|(id, _)| id).collect())),
        }
    }

    /// Writes an attempt's new version.
    pub fn save_attempt(&self, attempt: &Attempt) -> Result<()> {
        upsert_attempt(&self.conn, attempt)
    }

    /// Re-reads attempt `id` and writes `change(current)`, in one immediate
    /// transaction: an update computed from network answers (a sync) never
    /// overwrites one that landed meanwhile (a webhook), and the other way round.
    pub fn update_attempt(&self, id: &str, change: impl FnOnce(&Attempt) -> Attempt) -> Result<Attempt> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)?;
        let json: String = tx
            .query_row("SELECT json FROM attempts WHERE id = ?1", params![id], |row| row.get(0))
            .with_context(|| format!("attempt {id} is not in the database"))?;
        let current: Attempt = serde_json::from_str(&json).with_context(|| format!("attempt {id} is not valid"))?;
        let next = change(&current);
        if next != current {
            upsert_attempt(&tx, &next)?;
        }
        tx.commit()?;
        Ok(next)
    }

    /// Records a webhook delivery and applies it, in one immediate
    /// transaction: `apply` gets the attempts the delivery's keys find,
    /// newest first, and returns the one it changed. A delivery id seen
    /// before changes nothing, nor does a delivery about an object (a check
    /// run, a PR) that a later-stamped delivery already described.
    pub fn record_delivery(
        &self,
        delivery: &Delivery,
        apply: impl FnOnce(&[Attempt]) -> Option<Attempt>,
    ) -> Result<DeliveryOutcome> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)?;
        let seen: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM webhook_deliveries WHERE delivery_id = ?1)",
            [&delivery.id],
            |row| row.get(0),
        )?;
        if seen {
            return Ok(DeliveryOutcome::Duplicate);
        }
        let stale: bool = match (&delivery.object_key, &delivery.object_time) {
            (Some(key), Some(time)) => tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM webhook_deliveries WHERE object_key = ?1 AND object_time > ?2)",
                params![key, time],
                |row| row.get(0),
            )?,
            _ => false,
        };
        let outcome = if stale {
            DeliveryOutcome::Stale
        } else {
            let mut found = std::collections::BTreeMap::new();
            let mut stmt = tx.prepare(
                "SELECT a.seq, a.json FROM attempt_keys k JOIN attempts a ON a.seq = k.attempt_seq
                 WHERE k.key = ?1 ORDER BY a.seq DESC LIMIT ?2",
            )?;
            for key in &delivery.keys {
                let rows = stmt.query_map(params![key, KEY_MATCHES], |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)))?;
                for row in rows {
                    let (seq, json): (i64, String) = row?;
                    found.insert(seq, json);
                }
            }
            drop(stmt);
            let candidates: Vec<Attempt> = found.values().rev().map(|json| parse(json)).collect::<Result<_>>()?;
            let next = apply(&candidates);
            if let Some(next) = &next {
                if candidates.iter().find(|have| have.id == next.id) != Some(next) {
                    upsert_attempt(&tx, next)?;
                }
            }
            DeliveryOutcome::Applied(next.map(Box::new))
        };
        let attempt_id = match &outcome {
            DeliveryOutcome::Applied(Some(attempt)) => Some(attempt.id.clone()),
            _ => None,
        };
        tx.execute(
            "INSERT INTO webhook_deliveries (delivery_id, kind, object_key, object_time, attempt_id, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                delivery.id,
                delivery.kind,
                delivery.object_key,
                delivery.object_time,
                attempt_id,
                delivery.received_at
            ],
        )?;
        tx.commit()?;
        Ok(outcome)
    }

    /// Claims the dispatch of an event: true for exactly one caller, however
    /// many pollers (threads or processes) see the event, unless the event
    /// already has a dispatch record. A claim left by a poll that died
    /// before dispatching goes stale after ten minutes and can be taken again.
    pub fn claim_dispatch(&self, event_id: &str) -> Result<bool> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
        let changed = self.conn.execute(
            "INSERT INTO dispatch_claims (event_id, claimed_at)
             SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM dispatches WHERE event_id = ?1)
             ON CONFLICT(event_id) DO UPDATE SET claimed_at = excluded.claimed_at
             WHERE dispatch_claims.claimed_at < ?3",
            params![event_id, now, now - STALE_CLAIM_SECONDS],
        )?;
        Ok(changed == 1)
    }

    /// Attempt and dispatch counts per status, over the whole database.
    pub fn status_counts(&self) -> Result<(StatusCounts, StatusCounts)> {
        let count = |table: &str| -> Result<StatusCounts> {
            let sql = format!("SELECT status, count(*) FROM {table} GROUP BY status ORDER BY status");
            let mut stmt = self.conn.prepare(&sql)?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        Ok((count("attempts")?, count("dispatches")?))
    }

    /// How many events and webhook deliveries the database holds.
    pub fn totals(&self) -> Result<(i64, i64)> {
        let count = |sql: &str| -> Result<i64> { Ok(self.conn.query_row(sql, [], |row| row.get(0))?) };
        Ok((count("SELECT count(*) FROM events")?, count("SELECT count(*) FROM webhook_deliveries")?))
    }

    pub fn cursor(&self, source_id: &str) -> Result<Option<Cursor>> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT json FROM feed_cursors WHERE source_id = ?1", [source_id], |row| row.get(0))
            .optional()?;
        json.map(|text| parse(&text)).transpose()
    }

    pub fn save_cursor(&self, source_id: &str, cursor: &Cursor) -> Result<()> {
        self.conn.execute(
            "INSERT INTO feed_cursors (source_id, json) VALUES (?1, ?2)
             ON CONFLICT(source_id) DO UPDATE SET json = excluded.json",
            params![source_id, stored_json(cursor)?],
        )?;
        Ok(())
    }
}

fn upsert_attempt(conn: &Connection, attempt: &Attempt) -> Result<()> {
    let seq: i64 = conn.query_row(
        "INSERT INTO attempts (id, event_id, status, updated_at, json) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,
         json = excluded.json
         RETURNING seq",
        params![attempt.id, attempt.event_id, attempt.status.as_str(), attempt.updated_at, stored_json(attempt)?],
        |row| row.get(0),
    )?;
    index_attempt(conn, seq, attempt)
}

/// Rewrites the webhook keys of the attempt in row `seq`.
fn index_attempt(conn: &Connection, seq: i64, attempt: &Attempt) -> Result<()> {
    conn.execute("DELETE FROM attempt_keys WHERE attempt_seq = ?1", [seq])?;
    let mut insert = conn.prepare_cached("INSERT OR IGNORE INTO attempt_keys (key, attempt_seq) VALUES (?1, ?2)")?;
    for key in index_keys(attempt) {
        insert.execute(params![key, seq])?;
    }
    Ok(())
}

/// A read-only connection to `path` and its schema version. A WAL database
/// needs its `-shm` file, which a reader cannot create where nothing can be
/// written: then it is read as immutable (no writer can be at work in a
/// directory nobody can write).
fn open_read_only(path: &Path) -> Result<(Connection, i64)> {
    use rusqlite::OpenFlags;
    let version = |conn: &Connection| conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0));
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let first = Connection::open_with_flags(path, flags).and_then(|conn| {
        conn.busy_timeout(Duration::from_secs(10))?;
        let found = version(&conn)?;
        Ok((conn, found))
    });
    let err = match first {
        Ok(opened) => return Ok(opened),
        Err(err) => err,
    };
    // Reading the file as immutable is right only where nothing can write
    // it: not when a writer holds it (busy), and not when a `-wal` file
    // holds writes the file does not have yet (SQLite would not see them).
    if matches!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    {
        return Err(err).with_context(|| format!("database {} is busy", path.display()));
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    if std::fs::metadata(&wal).is_ok_and(|meta| meta.len() > 0) {
        return Err(err).with_context(|| {
            format!(
                "database {} cannot be opened to read here, and {} holds writes not yet in it: \
                 run any patchmoi command that writes (e.g. `patchmoi run …`) where the data dir is writable, \
                 or read a copy of the directory",
                path.display(),
                wal.display()
            )
        });
    }
    let uri = format!("file:{}?immutable=1", uri_path(path));
    Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        .and_then(|conn| {
            let found = version(&conn)?;
            Ok((conn, found))
        })
        .map_err(|_| err)
        .with_context(|| format!("failed to open database {} to read", path.display()))
}

/// `path` as the path of a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'%' | b'?' | b'#' => out.push_str(&format!("%{byte:02X}")),
            _ if byte.is_ascii() => out.push(*byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Refuses a database a newer patchmoi wrote: this binary would misread it.
fn check_version(version: i64, path: &Path) -> Result<()> {
    if version > SCHEMA_VERSION {
        bail!(
            "database {} has schema version {version}, written by a newer patchmoi; this patchmoi ({}) \
             understands versions up to {SCHEMA_VERSION}: upgrade patchmoi to use this DATA_DIR",
            path.display(),
            env!("CARGO_PKG_VERSION")
        );
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).context("the database holds a record this patchmoi cannot read")
}

/// Parses an attempt status filter, naming `what` (a flag or parameter).
pub fn attempt_status_filter(value: Option<&str>, what: &str) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(text) => match AttemptStatus::parse(text) {
            Some(status) => Ok(Some(status.as_str().to_string())),
            None => Err(format!(
                "{what} must be one of {}, not {text:?}",
                AttemptStatus::ALL.map(AttemptStatus::as_str).join(", ")
            )),
        },
    }
}

/// Parses a dispatch status filter, naming `what`.
pub fn dispatch_status_filter(value: Option<&str>, what: &str) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(text) => match DispatchStatus::parse(text) {
            Some(status) => Ok(Some(status.as_str().to_string())),
            None => Err(format!("{what} must be one of dispatched, failed, skipped, not {text:?}")),
        },
    }
}

/// A record as the database keeps it: JSON with every held secret hidden
/// (a step's message or an error may quote one).
fn stored_json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    Ok(scrub_held(&serde_json::to_string(value)?))
}

#[path = "store_reports.rs"]
mod reports;
pub use reports::{PollRecord, RunRecord};

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
