//! Cross-process locks: `flock` on files in `data_dir/locks`. The kernel releases a lock
//! when its process dies, so a killed run never leaves a stale lock behind.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{what} is busy (another splynx-bitpay process holds it); try again shortly")]
    Busy { what: String },
    #[error("cannot open lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl crate::exit::Failing for LockError {
    /// Another process is at it: try again.
    fn exit_code(&self) -> crate::exit::ExitCode {
        crate::exit::ExitCode::Temporary
    }
}

/// Held until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// A lock per item (document, invoice) hashed into 256 buckets, so the number of lock
/// files stays bounded; unrelated items sharing a bucket only wait for each other.
pub fn bucket_name(kind: &str, item: &str) -> String {
    let hash = Sha256::digest(item.as_bytes());
    format!("{kind}-{:02x}", hash[0])
}

/// Waits up to `wait` for the named lock.
pub fn acquire(data_dir: &Path, name: &str, what: &str, wait: Duration) -> Result<Lock, LockError> {
    let file = open(data_dir, name)?;
    let deadline = Instant::now() + wait;
    // Short pauses: under a webhook storm many processes queue here, and a long sleep
    // would make an unlucky one wait far longer than the holder needs.
    let mut pause = Duration::from_micros(200);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(4));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Busy {
                    what: what.to_string(),
                })
            }
            Err(TryLockError::Error(source)) => {
                return Err(LockError::Io {
                    path: lock_path(data_dir, name).display().to_string(),
                    source,
                })
            }
        }
    }
}

fn lock_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("locks").join(format!("{name}.lock"))
}

fn open(data_dir: &Path, name: &str) -> Result<File, LockError> {
    let path = lock_path(data_dir, name);
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_gets_busy() {
        let dir = tempfile::tempdir().unwrap();
        let held = acquire(dir.path(), "x", "the test lock", Duration::ZERO).unwrap();
        let err = acquire(dir.path(), "x", "the test lock", Duration::from_millis(20)).unwrap_err();
        assert!(err.to_string().contains("the test lock is busy"));
        drop(held);
        acquire(dir.path(), "x", "the test lock", Duration::ZERO).unwrap();
    }

    #[test]
    fn buckets_are_stable_and_bounded() {
        assert_eq!(bucket_name("invoice", "abc"), bucket_name("invoice", "abc"));
        assert_eq!(bucket_name("invoice", "abc").len(), "invoice-00".len());
    }
}
