//! The database's files on disk: the store holds business data (orders, accounts, API key
//! hashes), so its file and the directories created for it are the owner's only.
//!
//! SQLite creates `-wal` and `-shm` with the mode of the database file, so creating the
//! database file owner-only (0600) before SQLite opens it keeps all three private. A file
//! left readable by others (by an older version, say) is narrowed when the store opens it.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Mode of the database file and its `-wal` and `-shm` companions.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Mode of directories created for the database.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;

/// Creates the missing parent directories of `path` (0700) and the database file itself
/// (empty, 0600) if it does not exist; narrows an existing database file, `-wal` or `-shm`
/// that others can read to 0600. Directories that exist already keep their mode.
///
/// # Errors
/// A directory or the file cannot be created, or an existing file's mode cannot be changed.
pub(crate) fn prepare(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
        builder
            .create(parent)
            .map_err(|e| Error::Database(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
        .open(path)
        .map_err(|e| Error::Database(format!("cannot create {}: {e}", path.display())))?;
    for file in companions(path) {
        narrow(&file)?;
    }
    Ok(())
}

/// The database file, its `-wal` and its `-shm`.
fn companions(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Makes an existing file that group or others may access the owner's only.
#[cfg(unix)]
fn narrow(file: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(metadata) = std::fs::metadata(file) else {
        return Ok(());
    };
    if metadata.permissions().mode() & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(FILE_MODE)).map_err(|e| {
        Error::Database(format!(
            "cannot make {} readable by its owner only: {e}",
            file.display()
        ))
    })
}

#[cfg(not(unix))]
fn narrow(_file: &Path) -> Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::Store as _;
    use crate::sqlite::SqliteStore;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    /// Issue 22: the store's file, its `-wal` and `-shm`, and the folders created for them
    /// are the owner's only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_database_its_wal_and_shm_and_new_folders_are_owner_only() {
        let root = std::env::temp_dir().join(format!(
            "crossdock-store-modes-{}-{}",
            std::process::id(),
            crate::random_suffix()
        ));
        let path = root.join("data").join("crossdock.sqlite");
        let store = SqliteStore::open(&path).await.expect("open");
        store
            .kv_put(
                "test",
                "k",
                serde_json::json!({ "v": 1 }),
                time::OffsetDateTime::UNIX_EPOCH,
            )
            .await
            .expect("write");
        let [db, wal, shm] = companions(&path);
        assert!(wal.exists() && shm.exists(), "WAL mode keeps -wal and -shm");
        for file in [&db, &wal, &shm] {
            assert_eq!(mode(file), 0o600, "{}", file.display());
        }
        assert_eq!(mode(&root.join("data")), 0o700);
        assert_eq!(mode(&root), 0o700);
        drop(store);

        // Files an older version left readable by others are narrowed on the next open.
        for file in [&db, &wal, &shm] {
            if file.exists() {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))
                    .expect("chmod");
            }
        }
        let store = SqliteStore::open(&path).await.expect("reopen");
        assert_eq!(
            store.kv_get("test", "k").await.expect("read"),
            Some(serde_json::json!({ "v": 1 }))
        );
        for file in [&db, &wal, &shm] {
            if file.exists() {
                assert_eq!(mode(file), 0o600, "{}", file.display());
            }
        }
        drop(store);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn an_existing_folder_keeps_its_mode() {
        let root = std::env::temp_dir().join(format!(
            "crossdock-store-dir-{}-{}",
            std::process::id(),
            crate::random_suffix()
        ));
        std::fs::create_dir_all(&root).expect("dir");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        prepare(&root.join("hub.sqlite")).expect("prepared");
        assert_eq!(mode(&root), 0o755);
        assert_eq!(mode(&root.join("hub.sqlite")), 0o600);
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
