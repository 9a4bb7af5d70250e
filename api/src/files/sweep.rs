//! The folder swept of what no stored file holds.
//!
//! A write removes the content it placed when it fails before its commit,
//! and an erasure its family's folder after its commit; a server that
//! stops between the two leaves the content behind, never served (a
//! download starts from `stored_files`) but still on disk. The sweep
//! removes, family by family, every content without its row, under the
//! lock a writer of that file holds until its transaction ends: a write
//! under way keeps its file, a write that has committed has its row. A
//! partial write (`.….part`) is removed once it is an hour old.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sqlx::PgPool;
use uuid::Uuid;

use super::{lock_name, Files, Storage, FILE_LOCKS};

/// How old a partial write must be to be removed: no write takes that
/// long.
const PARTIAL_WRITE_AGE: Duration = Duration::from_secs(3600);

/// What a sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Contents no stored file held, and partial writes.
    pub removed: usize,
}

impl Files {
    /// Removes the folder's contents no stored file holds (nothing to do
    /// when contents are kept in the database).
    pub async fn sweep(&self, pool: &PgPool) -> anyhow::Result<Swept> {
        let Storage::Folder(folder) = &self.settings.storage else {
            return Ok(Swept::default());
        };
        let mut swept = Swept::default();
        for (family_id, directory) in families(folder).await? {
            let held: HashSet<String> =
                sqlx::query_scalar::<_, String>("SELECT sha256 FROM stored_files WHERE family_id = $1")
                    .bind(family_id)
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .collect();
            let mut entries = tokio::fs::read_dir(&directory).await?;
            while let Some(entry) = entries.next_entry().await? {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.ends_with(".part") {
                    if older_than(&entry.path(), PARTIAL_WRITE_AGE).await {
                        swept.removed += remove(&entry.path()).await?;
                    }
                } else if is_sha256(&name) && !held.contains(&name) {
                    swept.removed += remove_unheld(pool, family_id, &name, &entry.path()).await?;
                }
            }
        }
        Ok(swept)
    }
}

/// The families' folders: those named by a family id.
async fn families(folder: &Path) -> std::io::Result<Vec<(Uuid, PathBuf)>> {
    let mut families = Vec::new();
    let mut entries = match tokio::fs::read_dir(folder).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(families),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        let Ok(family_id) = Uuid::parse_str(&entry.file_name().to_string_lossy()) else {
            continue;
        };
        if entry.file_type().await?.is_dir() {
            families.push((family_id, entry.path()));
        }
    }
    Ok(families)
}

/// Removes a content if no write of it is under way and it still has no
/// row once its lock is held.
async fn remove_unheld(pool: &PgPool, family_id: Uuid, sha256: &str, path: &Path) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, $2))")
        .bind(lock_name(family_id, sha256))
        .bind(FILE_LOCKS)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(0);
    }
    let stored: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM stored_files WHERE family_id = $1 AND sha256 = $2)")
            .bind(family_id)
            .bind(sha256)
            .fetch_one(&mut *tx)
            .await?;
    let removed = if stored { 0 } else { remove(path).await? };
    tx.commit().await?;
    Ok(removed)
}

async fn remove(path: &Path) -> anyhow::Result<usize> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(1),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e.into()),
    }
}

async fn older_than(path: &Path, age: Duration) -> bool {
    let modified = tokio::fs::metadata(path).await.and_then(|m| m.modified());
    modified.is_ok_and(|at| {
        SystemTime::now()
            .duration_since(at)
            .is_ok_and(|elapsed| elapsed > age)
    })
}

fn is_sha256(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}
