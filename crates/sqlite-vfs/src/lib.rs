//! A SQLite VFS that hands each commit's WAL frames to the file system in a few writes.
//!
//! SQLite writes every WAL frame with two calls (its 24-byte header, then the page), so a
//! commit of a hundred pages costs two hundred `pwrite`s before its `fsync`. This VFS wraps
//! the default one; for WAL files only, contiguous writes are kept in a buffer and written
//! out (in pieces of at most 124 KiB, see `WRITE_AT_MOST`) when:
//! - SQLite syncs, reads, truncates or sizes the file, or sends it a file control;
//! - a write does not continue the buffer (order of writes is kept: the buffer goes first);
//! - the frame that commits a transaction has been handed over (its header carries the
//!   database size, which is zero in other frames), so the commit is in the file before
//!   SQLite publishes it to other connections, whatever the `synchronous` setting;
//! - the buffer passes [`FLUSH_AT`] bytes, or the file is closed.
//!
//! Nothing is acknowledged before a sync, and a sync writes the buffer first, so a commit
//! is exactly as durable as with the default VFS.
//!
//! A writer can also take a commit's sync upon itself ([`deferring_syncs`]): the `COMMIT`
//! then returns once its frames are written, and the caller syncs the file (on another
//! thread, while it goes on with the next transaction) before it reports the commit.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name the VFS is registered under.
pub const NAME: &str = "crossdock-wal";
const NAME_C: &CStr = c"crossdock-wal";

/// Buffered bytes after which a WAL file's buffer is written even mid-commit.
pub const FLUSH_AT: usize = 8 << 20;

/// Largest write handed to the default VFS at once: the Unix VFS writes at most 128 KiB - 1
/// bytes per system call (it masks the length with `0x1ffff`, so a write of exactly 128 KiB
/// would fail as "disk full"). 31 pages of 4 KiB.
const WRITE_AT_MOST: usize = 31 * 4096;

/// Size of a WAL frame header; the header of the frame that commits a transaction carries
/// the database size (in pages) at bytes 4..8.
const FRAME_HEADER: usize = 24;

thread_local! {
    static WAL_WRITES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static WAL_SYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Inside [`deferring_syncs`]: WAL commit syncs are recorded, not done.
    static DEFER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// A WAL sync was deferred inside the current [`deferring_syncs`].
    static DEFERRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `commit` (a `COMMIT` on a connection opened through this VFS, on this thread) with
/// the sync SQLite asks for after appending the transaction's frames to the WAL recorded
/// instead of done; returns `commit`'s result and whether a sync was recorded.
///
/// When it was, the transaction is in the file (written, visible to other connections)
/// but not durable: the caller must sync the WAL file itself (`File::sync_data` on its
/// path) before treating the commit, or anything read after it, as durable. Other syncs are
/// done in place: a new log's header, checkpoints, and any sync outside `commit`.
pub fn deferring_syncs<R>(commit: impl FnOnce() -> R) -> (R, bool) {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            DEFER.set(false);
        }
    }
    DEFERRED.set(false);
    DEFER.set(true);
    let reset = Reset;
    let result = commit();
    drop(reset);
    (result, DEFERRED.replace(false))
}
static REGISTERED: OnceLock<Result<(), c_int>> = OnceLock::new();

/// Registers the VFS (once per process; it is not the default) and returns its name, for
/// [`rusqlite::Connection::open_with_flags_and_vfs`].
///
/// # Errors
/// SQLite has no default VFS or refuses the registration (its result code).
pub fn register() -> Result<&'static str, String> {
    let registered = REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find(NULL)` returns SQLite's default VFS, which lives for the
        // whole process; it is only read here. The copy is leaked, so the pointer SQLite
        // keeps after `sqlite3_vfs_register` stays valid for the process's lifetime.
        unsafe {
            let default = ffi::sqlite3_vfs_find(ptr::null());
            if default.is_null() {
                return Err(ffi::SQLITE_ERROR);
            }
            let mut vfs = *default;
            vfs.szOsFile =
                c_int::try_from(REAL_OFFSET).map_err(|_| ffi::SQLITE_ERROR)? + (*default).szOsFile;
            vfs.zName = NAME_C.as_ptr();
            vfs.pAppData = default.cast::<c_void>();
            vfs.pNext = ptr::null_mut();
            vfs.xOpen = Some(open);
            let vfs = Box::leak(Box::new(vfs));
            match ffi::sqlite3_vfs_register(vfs, 0) {
                ffi::SQLITE_OK => Ok(()),
                rc => Err(rc),
            }
        }
    });
    match registered {
        Ok(()) => Ok(NAME),
        Err(rc) => Err(format!("cannot register the SQLite VFS {NAME} (code {rc})")),
    }
}

/// Write calls that reached WAL files opened through this VFS, made by this thread (tests
/// running side by side do not count each other's).
#[must_use]
pub fn wal_writes() -> u64 {
    WAL_WRITES.get()
}

/// Syncs of WAL files opened through this VFS done by this thread (deferred ones are not
/// counted).
#[must_use]
pub fn wal_syncs() -> u64 {
    WAL_SYNCS.get()
}

/// Contiguous WAL bytes not yet written, from file offset `start`.
#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    start: i64,
    /// The last write was the header of a commit frame: write out after its page.
    commit_frame: bool,
    /// The log's header was written since the last sync (a new log starts): that sync is
    /// done in place, never deferred.
    log_header: bool,
}

/// The file object SQLite allocates (`szOsFile` bytes): this header, then at
/// [`REAL_OFFSET`] the default VFS's own file object.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// `Some` for WAL files only.
    wal: Option<Box<Buffer>>,
}

const REAL_OFFSET: usize = size_of::<File>().next_multiple_of(16);

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite passes our VFS (whose `pAppData` is the default VFS) and a zeroed
    // block of `szOsFile` bytes, aligned for any type, which we split into our header and
    // the default VFS's file object at REAL_OFFSET.
    unsafe {
        let default = (*vfs).pAppData.cast::<ffi::sqlite3_vfs>();
        let shim = file.cast::<File>();
        let real = file
            .cast::<u8>()
            .add(REAL_OFFSET)
            .cast::<ffi::sqlite3_file>();
        let wal = (flags & ffi::SQLITE_OPEN_WAL != 0).then(Box::<Buffer>::default);
        shim.write(File {
            base: ffi::sqlite3_file {
                pMethods: ptr::null(),
            },
            real,
            wal,
        });
        let rc = match (*default).xOpen {
            Some(real_open) => real_open(default, name, real, flags, out_flags),
            None => ffi::SQLITE_CANTOPEN,
        };
        if rc != ffi::SQLITE_OK || (*real).pMethods.is_null() {
            // SQLite does not close a file whose open failed (`pMethods` stays NULL).
            ptr::drop_in_place(shim);
            (*file).pMethods = ptr::null();
            return if rc == ffi::SQLITE_OK {
                ffi::SQLITE_CANTOPEN
            } else {
                rc
            };
        }
        (*file).pMethods = &raw const METHODS;
        ffi::SQLITE_OK
    }
}

/// Our header of `file`.
///
/// # Safety
/// `file` must have been opened by [`open`] and not closed.
unsafe fn shim<'f>(file: *mut ffi::sqlite3_file) -> &'f mut File {
    // SAFETY: per the contract, `file` starts with a live `File` (see `open`); SQLite calls
    // a file's methods from one thread at a time.
    unsafe { &mut *file.cast::<File>() }
}

/// The default VFS's file object and its methods.
///
/// # Safety
/// As for [`shim`].
unsafe fn real(file: *mut ffi::sqlite3_file) -> (*mut ffi::sqlite3_file, ffi::sqlite3_io_methods) {
    // SAFETY: per the contract; the real file was opened successfully, so its `pMethods`
    // points at the default VFS's static method table.
    unsafe {
        let real = shim(file).real;
        let mut methods = *(*real).pMethods;
        if methods.iVersion < 2 {
            methods.xShmMap = None;
            methods.xShmLock = None;
            methods.xShmBarrier = None;
            methods.xShmUnmap = None;
        }
        if methods.iVersion < 3 {
            methods.xFetch = None;
            methods.xUnfetch = None;
        }
        (real, methods)
    }
}

/// Writes the buffer of a WAL file (nothing for other files).
///
/// # Safety
/// As for [`shim`].
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        let (real, methods) = real(file);
        let Some(buffer) = shim(file).wal.as_deref_mut() else {
            return ffi::SQLITE_OK;
        };
        buffer.commit_frame = false;
        if buffer.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let Some(write) = methods.xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let mut rc = ffi::SQLITE_OK;
        let mut offset = buffer.start;
        for chunk in buffer.bytes.chunks(WRITE_AT_MOST) {
            // Both fit: a chunk is at most WRITE_AT_MOST bytes.
            let len = c_int::try_from(chunk.len()).unwrap_or(c_int::MAX);
            rc = write(real, chunk.as_ptr().cast(), len, offset);
            WAL_WRITES.set(WAL_WRITES.get() + 1);
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += i64::try_from(chunk.len()).unwrap_or(i64::MAX);
        }
        buffer.bytes.clear();
        if buffer.bytes.capacity() > FLUSH_AT {
            buffer.bytes.shrink_to(FLUSH_AT);
        }
        rc
    }
}

/// Writes the buffer, then runs `then` unless that failed.
///
/// # Safety
/// As for [`shim`].
unsafe fn flushed(file: *mut ffi::sqlite3_file, then: impl FnOnce() -> c_int) -> c_int {
    // SAFETY: per the contract.
    match unsafe { flush(file) } {
        ffi::SQLITE_OK => then(),
        rc => rc,
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file it opened through `open`, once.
    unsafe {
        let flushed = flush(file);
        let (real, methods) = real(file);
        let closed = methods.xClose.map_or(ffi::SQLITE_OK, |close| close(real));
        shim(file).wal = None;
        if flushed == ffi::SQLITE_OK {
            closed
        } else {
            flushed
        }
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    out: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this on a file opened through `open`; the rest is delegated.
    unsafe {
        flushed(file, || {
            let (real, methods) = real(file);
            methods
                .xRead
                .map_or(ffi::SQLITE_IOERR_READ, |f| f(real, out, amount, offset))
        })
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls this on a file opened through `open`, with `amount` readable
    // bytes at `data`.
    unsafe {
        let Some(buffer) = shim(file).wal.as_deref_mut() else {
            let (real, methods) = real(file);
            return methods
                .xWrite
                .map_or(ffi::SQLITE_IOERR_WRITE, |f| f(real, data, amount, offset));
        };
        let Ok(len) = usize::try_from(amount) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let end = buffer.start + i64::try_from(buffer.bytes.len()).unwrap_or(i64::MAX);
        if !buffer.bytes.is_empty() && offset != end {
            let rc = flush(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let Some(buffer) = shim(file).wal.as_deref_mut() else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        if buffer.bytes.is_empty() {
            buffer.start = offset;
        }
        if offset == 0 {
            buffer.log_header = true;
        }
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), len);
        buffer.bytes.extend_from_slice(bytes);
        let committed = buffer.commit_frame;
        buffer.commit_frame = len == FRAME_HEADER && bytes[4..8] != [0; 4];
        if committed || buffer.bytes.len() >= FLUSH_AT {
            return flush(file);
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        flushed(file, || {
            let (real, methods) = real(file);
            methods
                .xTruncate
                .map_or(ffi::SQLITE_IOERR_TRUNCATE, |f| f(real, size))
        })
    }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        flushed(file, || {
            if let Some(buffer) = shim(file).wal.as_deref_mut() {
                let log_header = std::mem::take(&mut buffer.log_header);
                if DEFER.get() && !log_header {
                    DEFERRED.set(true);
                    return ffi::SQLITE_OK;
                }
                WAL_SYNCS.set(WAL_SYNCS.get() + 1);
            }
            let (real, methods) = real(file);
            methods
                .xSync
                .map_or(ffi::SQLITE_IOERR_FSYNC, |f| f(real, flags))
        })
    }
}

unsafe extern "C" fn file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        flushed(file, || {
            let (real, methods) = real(file);
            methods
                .xFileSize
                .map_or(ffi::SQLITE_IOERR_FSTAT, |f| f(real, size))
        })
    }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        flushed(file, || {
            let (real, methods) = real(file);
            methods
                .xFileControl
                .map_or(ffi::SQLITE_NOTFOUND, |f| f(real, op, arg))
        })
    }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods
            .xLock
            .map_or(ffi::SQLITE_IOERR_LOCK, |f| f(real, level))
    }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods
            .xUnlock
            .map_or(ffi::SQLITE_IOERR_UNLOCK, |f| f(real, level))
    }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods
            .xCheckReservedLock
            .map_or(ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, |f| f(real, out))
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods.xSectorSize.map_or(4096, |f| f(real))
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods.xDeviceCharacteristics.map_or(0, |f| f(real))
    }
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods.xShmMap.map_or(ffi::SQLITE_IOERR_SHMMAP, |f| {
            f(real, region, size, extend, out)
        })
    }
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods
            .xShmLock
            .map_or(ffi::SQLITE_IOERR_SHMLOCK, |f| f(real, offset, n, flags))
    }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        if let Some(f) = methods.xShmBarrier {
            f(real);
        }
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods
            .xShmUnmap
            .map_or(ffi::SQLITE_OK, |f| f(real, delete))
    }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as for `read`. Without a fetch method, SQLite reads instead (NULL page).
    unsafe {
        let (real, methods) = real(file);
        match methods.xFetch {
            Some(f) => f(real, offset, amount, out),
            None => {
                *out = ptr::null_mut();
                ffi::SQLITE_OK
            }
        }
    }
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    // SAFETY: as for `read`.
    unsafe {
        let (real, methods) = real(file);
        methods
            .xUnfetch
            .map_or(ffi::SQLITE_OK, |f| f(real, offset, page))
    }
}

#[cfg(test)]
mod tests;
