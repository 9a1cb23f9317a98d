//! Test helpers that run the real `crossdock` binary: free ports, temp dirs kept on request,
//! readiness polling (no fixed sleeps), SIGKILL, and log capture.
//!
//! Set `TEST_KEEP=1` to keep temp dirs (store files, logs) after a test.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::{Child, Command};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// A temporary directory, removed on drop unless `TEST_KEEP` is set.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A fresh directory named after the test.
    pub fn new(name: &str) -> Result<TempDir> {
        let nanos = std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("crossdock-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("TEST_KEEP").is_some() {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A running process with its output in a log file.
pub struct Process {
    child: Child,
    /// Where stdout and stderr go.
    pub log: PathBuf,
}

impl Process {
    /// Starts `program` with `args`, appending its output to `log`.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(
        program: &Path,
        args: &[String],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Result<Process> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true);
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        Ok(Process {
            child,
            log: log.to_owned(),
        })
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub async fn kill9(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends SIGINT (Ctrl-C): the process may shut down gracefully.
    ///
    /// # Errors
    /// When the process is gone or the signal cannot be sent.
    pub fn interrupt(&self) -> Result<()> {
        let pid = self.child.id().context("the process has exited")?;
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -INT {pid} failed: {status}");
        }
        Ok(())
    }

    /// Waits for the process to exit on its own.
    ///
    /// # Errors
    /// When it is still running after `limit`.
    pub async fn wait(&mut self, limit: Duration) -> Result<ExitStatus> {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!("still running after {limit:?}; log: {}", self.log.display()),
        }
    }

    /// Whether it has exited, without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of its log.
    pub fn tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }
}

/// The last lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `url` until it answers 2xx.
///
/// # Errors
/// When it does not within `limit`.
pub async fn wait_ready(url: &str, limit: Duration) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!("{url} did not answer within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A small deterministic generator for test choices (xorshift), so failures can be replayed
/// from the printed seed.
pub struct Dice(u64);

impl Dice {
    /// Seeded dice.
    pub fn new(seed: u64) -> Dice {
        Dice(seed | 1)
    }

    /// A number in `[low, high)`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low).max(1)
    }
}
