//! Writing files that hold secrets (sessions, private keys) so that a crash never leaves half a
//! file, the result is private, and nothing is ever written through a symbolic link.
//!
//! [`replace`] writes a new file next to the target (created exclusively, mode 0600 or the mode
//! asked for, never following a link), flushes it to disk and renames it over the target. The
//! rename is atomic: a reader, or the next run after a crash, sees the old file or the new one,
//! never a mix. Because the data always lands in a freshly created file, the mode applies even
//! when the target existed with wider permissions (`OpenOptions::mode` alone only applies on
//! creation). A target that is a symbolic link is refused: following it would let whoever
//! controls the link choose where the tokens go.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of files holding secrets.
pub(crate) const PRIVATE: u32 = 0o600;
/// Mode of files meant to be shared (a public JWKS).
pub(crate) const PUBLIC: u32 = 0o644;

/// Refuses `path` if it is a symbolic link (dangling or not).
pub(crate) fn refuse_symlink(path: &Path) -> Result<(), String> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(format!(
            "{} is a symbolic link; smart does not read or write session and key files through links: pass the real file's path",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Atomically replaces `path` with `bytes`, with permissions `mode` (Unix). See the module docs.
pub(crate) fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    refuse_symlink(path)?;
    let fail = |e: io::Error| format!("cannot write {}: {e}", path.display());
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file path", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (temp, mut file) = create_temp(&dir, &name.to_string_lossy(), mode).map_err(fail)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(fail(e));
    }
    // Make the rename itself durable; not every platform can open a directory, so best effort.
    if let Ok(dir) = fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates `.NAME.PID-N.tmp` in `dir` exclusively (`O_CREAT|O_EXCL` never follows a link).
fn create_temp(dir: &Path, name: &str, mode: u32) -> io::Result<(PathBuf, fs::File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut last_error = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

/// Creates `path` with `bytes` and mode `mode` unless it exists; returns whether it did.
///
/// The data is written to a temporary file first and then hard-linked into place: the link
/// either creates `path` complete or fails because it exists, so two processes starting at once
/// never see half a file, and exactly one of them creates it.
pub(crate) fn create_if_absent(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, String> {
    refuse_symlink(path)?;
    let fail = |e: io::Error| format!("cannot create {}: {e}", path.display());
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} is not a file path", path.display()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (temp, mut file) = create_temp(&dir, &name.to_string_lossy(), mode).map_err(fail)?;
    let linked = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::hard_link(&temp, path));
    let _ = fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            if let Ok(dir) = fs::File::open(&dir) {
                let _ = dir.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(fail(e)),
    }
}

/// Refuses a file holding a secret that others can read (any group or other permission bit),
/// as `ssh` does for private keys.
pub(crate) fn refuse_shared(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "{} is accessible by other users (mode {mode:04o}); run `chmod 600 {}`",
                    path.display(),
                    path.display()
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
