//! Persistence to a data directory: a write is answered only once it is on disk, so a killed
//! simulator resumes with everything it acknowledged, as the ERP it stands in for would.
//!
//! - At start, `DIR/erp-state.json` (if present) is read and the whole state restored from it
//!   (module `snapshot`); otherwise master data is generated from the seed as usual.
//! - The state is written atomically — a temporary file in the same directory, fsync, rename
//!   over the old file, fsync of the directory — right after start, whenever an answer waits
//!   for it, every `persist_interval_ms` when something changed, and on
//!   [`crate::Handle::shutdown`].
//! - Every change bumps the state's revision. Before an answer leaves (`crate::http`), and
//!   before a webhook delivery is sent, the caller waits until a write holding the revision it
//!   saw is on disk ([`Persister::wait_durable`]): nothing the outside world was told — a
//!   booking, a number, a feed event — can be lost by a kill.
//! - Group commit: one writer at a time; the answers waiting while a write is in progress are
//!   all covered by the next one, so the number of writes grows with time spent writing, not
//!   with the number of requests.
//! - A write copies the state under the lock (a clone, no I/O) and serializes and writes it
//!   outside, on a blocking thread; one write at a time, so an older copy never overwrites a
//!   newer one.

pub(crate) mod snapshot;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::wall_clock_ms;
use crate::config::Config;
use crate::server::Shared;
use crate::state::State;
use snapshot::{FORMAT, Snapshot};

/// Name of the state file inside the data directory.
pub const STATE_FILE: &str = "erp-state.json";

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// A file-system operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done (`create`, `read`, `write`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The state file exists but cannot be understood.
    #[error("{path} is not a valid ERP simulator state: {message}")]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The state file was written by a simulator with another file layout.
    #[error("{path} uses state format {found}; this simulator reads format {expected}")]
    Format {
        /// The state file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Version this simulator reads and writes.
        expected: u32,
    },
}

/// Figures about the writes so far (shown under `persistence` in `GET /admin/stats`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SaveStats {
    /// Successful writes.
    pub writes: u64,
    /// Size of the last file written, in bytes.
    pub last_bytes: u64,
    /// Time the state lock was held to copy the state for the last write (ms).
    pub last_copy_ms: f64,
    /// Time to serialize, write, fsync and rename the last write (ms).
    pub last_write_ms: f64,
    /// Wall-clock time of the last write, RFC 3339.
    pub last_written_at: Option<String>,
    /// Last failure, if the last attempt failed.
    pub last_error: Option<String>,
}

/// The data directory of a running simulator.
#[derive(Debug)]
pub(crate) struct Persister {
    dir: PathBuf,
    /// Held for a whole write (copy, serialize, write, rename) so writes happen one at a time
    /// and in order; holds the revision of the last state written.
    written: Mutex<Option<u64>>,
    /// The newest revision known to be on disk.
    durable: watch::Sender<u64>,
    /// The newest revision an answer waits for (the writer's demand).
    wanted: watch::Sender<u64>,
    /// Separate from `written`, so reading the figures never waits for a write.
    stats: Mutex<SaveStats>,
    /// Whether the state was restored from the directory at start.
    pub restored: bool,
}

/// Tells temporary files apart when two simulators of one process share a directory.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Persister {
    /// The directory holding the state.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until the state at `revision` (or a later one) is on disk. `false` when the
    /// simulator stops first: the caller must not acknowledge anything then.
    pub async fn wait_durable(&self, revision: u64, cancel: &CancellationToken) -> bool {
        if *self.durable.borrow() >= revision {
            return true;
        }
        self.wanted.send_if_modified(|wanted| {
            let more = revision > *wanted;
            if more {
                *wanted = revision;
            }
            more
        });
        let mut durable = self.durable.subscribe();
        tokio::select! {
            reached = durable.wait_for(|d| *d >= revision) => reached.is_ok(),
            () = cancel.cancelled() => *self.durable.borrow() >= revision,
        }
    }

    fn mark_durable(&self, revision: u64) {
        self.durable.send_if_modified(|durable| {
            let more = revision > *durable;
            if more {
                *durable = revision;
            }
            more
        });
    }

    /// Write statistics.
    pub fn stats(&self) -> SaveStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn write_file(&self, bytes: &[u8]) -> Result<(), PersistError> {
        let path = self.dir.join(STATE_FILE);
        let temp = self.dir.join(format!(
            "{STATE_FILE}.{}-{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = owner_only_file(&temp).map_err(io_error("create", &temp))?;
            file.write_all(bytes).map_err(io_error("write", &temp))?;
            file.sync_all().map_err(io_error("sync", &temp))?;
            drop(file);
            fs::rename(&temp, &path).map_err(io_error("rename into place", &path))?;
            sync_dir(&self.dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PersistError {
    let path = path.to_owned();
    move |source| PersistError::Io {
        action,
        path,
        source,
    }
}

/// Creates (or truncates) a file only its owner can read: the state holds customer data and
/// webhook secrets.
fn owner_only_file(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Creates the data directory (and missing parents) only its owner can enter.
fn owner_only_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes a rename durable: the directory entry itself is flushed.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), PersistError> {
    Ok(())
}

/// What opening the data directory produced.
pub(crate) struct Opened {
    pub state: State,
    pub persister: Persister,
    /// Wall-clock time of the restored snapshot, when one was restored.
    pub saved_at_wall_ms: Option<i64>,
}

/// Creates the directory if needed and restores the state found there, or generates a fresh
/// one from `config`. Blocking.
///
/// # Errors
/// The directory cannot be created or read, or the state file is unreadable.
pub(crate) fn open(dir: &Path, config: Config) -> Result<Opened, PersistError> {
    owner_only_dir(dir).map_err(io_error("create", dir))?;
    remove_stale_temp_files(dir);
    let path = dir.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => Some(bytes),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(PersistError::Io {
                action: "read",
                path,
                source,
            });
        }
    };
    let (state, saved_at_wall_ms) = match bytes {
        None => (State::new(config), None),
        Some(bytes) => {
            let snapshot = parse(&path, &bytes)?;
            if snapshot.seed != config.seed {
                tracing::warn!(
                    saved_seed = snapshot.seed,
                    configured_seed = config.seed,
                    path = %path.display(),
                    "Resuming the ERP simulator state generated from another seed; the saved seed is kept"
                );
            }
            let saved_at = snapshot.saved_at_wall_ms;
            let state =
                State::restore(config, snapshot).map_err(|message| PersistError::Corrupt {
                    path: path.clone(),
                    message,
                })?;
            tracing::info!(
                path = %path.display(),
                orders = state.orders.len(),
                last_seq = state.last_seq(),
                "Resumed the ERP simulator state"
            );
            (state, Some(saved_at))
        }
    };
    Ok(Opened {
        state,
        persister: Persister {
            dir: dir.to_owned(),
            written: Mutex::new(None),
            durable: watch::Sender::new(0),
            wanted: watch::Sender::new(0),
            stats: Mutex::new(SaveStats::default()),
            restored: saved_at_wall_ms.is_some(),
        },
        saved_at_wall_ms,
    })
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Snapshot, PersistError> {
    match serde_json::from_slice::<Snapshot>(bytes) {
        Ok(snapshot) if snapshot.format == FORMAT => Ok(snapshot),
        Ok(snapshot) => Err(PersistError::Format {
            path: path.to_owned(),
            found: snapshot.format,
            expected: FORMAT,
        }),
        Err(error) => {
            // A file of another layout fails to parse: name its version rather than the
            // first field that does not fit.
            #[derive(Deserialize)]
            struct Probe {
                format: u32,
            }
            match serde_json::from_slice::<Probe>(bytes) {
                Ok(probe) if probe.format != FORMAT => Err(PersistError::Format {
                    path: path.to_owned(),
                    found: probe.format,
                    expected: FORMAT,
                }),
                _ => Err(PersistError::Corrupt {
                    path: path.to_owned(),
                    message: error.to_string(),
                }),
            }
        }
    }
}

/// Temporary files of writes interrupted by a crash.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{STATE_FILE}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes the state when it changed since the last write (always when `force`). Blocking:
/// run it on a blocking thread. Returns whether a file was written.
///
/// # Errors
/// The file could not be written; the next attempt tries again.
pub(crate) fn save(shared: &Shared, force: bool) -> Result<bool, PersistError> {
    let Some(persister) = &shared.persist else {
        return Ok(false);
    };
    let mut written = persister
        .written
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let copy_started = Instant::now();
    let (revision, snapshot) = {
        let state = shared.lock();
        let revision = state.revision;
        if !force && *written == Some(revision) {
            persister.mark_durable(revision);
            return Ok(false);
        }
        (revision, state.snapshot(wall_clock_ms()))
    };
    let copy_ms = copy_started.elapsed().as_secs_f64() * 1000.0;
    let write_started = Instant::now();
    let result = serde_json::to_vec(&snapshot)
        .map_err(|error| PersistError::Corrupt {
            path: persister.dir.join(STATE_FILE),
            message: format!("cannot serialize the state: {error}"),
        })
        .and_then(|bytes| persister.write_file(&bytes).map(|()| bytes.len()));
    let mut stats = persister
        .stats
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(bytes) => {
            *written = Some(revision);
            persister.mark_durable(revision);
            stats.writes += 1;
            stats.last_bytes = bytes as u64;
            stats.last_copy_ms = copy_ms;
            stats.last_write_ms = write_started.elapsed().as_secs_f64() * 1000.0;
            stats.last_written_at = Some(crate::clock::format_ms(snapshot.saved_at_wall_ms));
            stats.last_error = None;
            Ok(true)
        }
        Err(error) => {
            stats.last_error = Some(error.to_string());
            Err(error)
        }
    }
}

/// [`save`] on a blocking thread.
pub(crate) async fn save_async(shared: &Arc<Shared>, force: bool) -> Result<bool, PersistError> {
    let worker = shared.clone();
    match tokio::task::spawn_blocking(move || save(&worker, force)).await {
        Ok(result) => result,
        Err(error) => Err(PersistError::Io {
            action: "write the state to",
            path: shared
                .persist
                .as_ref()
                .map(|p| p.dir.clone())
                .unwrap_or_default(),
            source: io::Error::other(error.to_string()),
        }),
    }
}

/// Writes the state whenever an answer waits for it (group commit: every answer that came to
/// wait during a write is covered by the next) and every `interval` when it changed, until the
/// simulator stops. A failed write is retried; the answers keep waiting meanwhile.
pub(crate) async fn write_continuously(shared: Arc<Shared>, interval: Duration) {
    let Some(persister) = &shared.persist else {
        return;
    };
    let mut wanted = persister.wanted.subscribe();
    loop {
        tokio::select! {
            changed = wanted.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(interval) => {}
            () = shared.cancel.cancelled() => return,
        }
        // Not raced with cancellation: a write in progress completes.
        if let Err(error) = save_async(&shared, false).await {
            tracing::error!(%error, "Writing the ERP simulator state failed");
            tokio::select! {
                () = tokio::time::sleep(RETRY_AFTER_FAILED_WRITE) => {}
                () = shared.cancel.cancelled() => return,
            }
        }
    }
}

/// Pause before writing again after a failed write.
const RETRY_AFTER_FAILED_WRITE: Duration = Duration::from_millis(200);
