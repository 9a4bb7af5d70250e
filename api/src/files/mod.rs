//! The files families attach to their requests (and agents to their
//! answers): received, recognised by their content, stored by family and
//! content hash, and served back through signed links that expire.
//!
//! - A received file waits in the temporary file the multipart reader
//!   spooled it to (never whole in memory); [`inspect`] hashes it and
//!   recognises its kind from its first bytes (`infer`), whatever its name
//!   or declared type says.
//! - [`Files::place`] stores it in the write's transaction: a row of
//!   `stored_files`, and its content in the folder (the default) or in
//!   `stored_file_contents`. A content written to the folder by a write
//!   that then fails is removed (see `Work::placed_file`).
//! - An erased family's rows go with its key ([`forget_family`]), and its
//!   folder after the commit ([`Files::remove_family`]).
//! - What a server stopped before it could remove (a content whose write
//!   did not commit, an erased family's folder, a partial write) is swept
//!   from the folder ([`Files::sweep`]).

use std::io::{Read, Seek, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use espace_famille_domain::collectivity::FileKind;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::ApiError;
use crate::i18n::say;

mod sweep;
pub use sweep::Swept;

/// Where the files' contents are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// `<folder>/<family id>/<sha256>`.
    Folder(PathBuf),
    /// The `stored_file_contents` table.
    Table,
}

/// The limits and the storage of files.
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub storage: Storage,
    /// The largest file, in bytes.
    pub max_file_bytes: u64,
    /// The largest multipart request, every file together.
    pub max_request_bytes: u64,
    /// The most files one request carries.
    pub max_files: usize,
    /// How long a download link works.
    pub link_valid_for: Duration,
    /// How often the folder is swept of what no stored file holds.
    pub sweep_every: Duration,
}

impl Default for FileSettings {
    fn default() -> Self {
        FileSettings {
            storage: Storage::Folder(PathBuf::from(".data/files")),
            max_file_bytes: 10 * 1024 * 1024,
            max_request_bytes: 25 * 1024 * 1024,
            max_files: 10,
            link_valid_for: Duration::from_secs(15 * 60),
            sweep_every: Duration::from_secs(3600),
        }
    }
}

/// The files' storage, with the secret that signs their links.
pub struct Files {
    pub settings: FileSettings,
    secret: Vec<u8>,
}

/// A stored file's content, as the download sends it: streamed from the
/// folder, or as the table holds it.
pub enum Content {
    Folder(tokio::fs::File),
    Memory(Vec<u8>),
}

/// A received file, inspected.
pub struct Received {
    /// The name it was sent under (kept for the family and the agents).
    pub name: String,
    pub file: std::fs::File,
    pub size: u64,
    pub sha256: String,
    /// Its kind, as its content shows it; `None`: none the product takes.
    pub kind: Option<FileKind>,
}

/// How many first bytes recognise a file's kind.
const HEAD: usize = 8 * 1024;

/// Hashes a received file and recognises its kind by its content. Blocking
/// (it reads the file): run it off the async workers.
pub fn inspect(name: &str, mut file: std::fs::File) -> std::io::Result<Received> {
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(HEAD);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        if head.len() < HEAD {
            let wanted = (HEAD - head.len()).min(read);
            head.extend_from_slice(&buffer[..wanted]);
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    file.seek(SeekFrom::Start(0))?;
    let kind = infer::get(&head).and_then(|t| FileKind::of_media_type(t.mime_type()));
    Ok(Received {
        name: name
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect(),
        file,
        size,
        sha256: hex::encode(hasher.finalize()),
        kind,
    })
}

/// The advisory locks of files: `(name, FILE_LOCKS)` hashed, held by a
/// file's writer until its transaction ends, and by the sweep while it
/// removes it.
const FILE_LOCKS: i64 = 4245;

fn lock_name(family_id: Uuid, sha256: &str) -> String {
    format!("{family_id}/{sha256}")
}

/// A file's place in the folder.
fn path_in(folder: &Path, family_id: Uuid, sha256: &str) -> PathBuf {
    folder.join(family_id.to_string()).join(sha256)
}

impl Files {
    /// The storage, with the links' secret (made once for every server of
    /// the database, kept in `link_secrets`).
    pub async fn open(pool: &PgPool, settings: FileSettings) -> Result<Files, sqlx::Error> {
        let fresh: [u8; 32] = rand::random();
        sqlx::query(
            "INSERT INTO link_secrets (name, secret) VALUES ('files', $1) ON CONFLICT (name) DO NOTHING",
        )
        .bind(fresh.as_slice())
        .execute(pool)
        .await?;
        let secret: Vec<u8> = sqlx::query_scalar("SELECT secret FROM link_secrets WHERE name = 'files'")
            .fetch_one(pool)
            .await?;
        if let Storage::Folder(folder) = &settings.storage {
            std::fs::create_dir_all(folder).map_err(sqlx::Error::Io)?;
        }
        Ok(Files { settings, secret })
    }

    /// Stores `received` for `family_id` in the write's transaction. The
    /// content is written only when the family did not hold it yet;
    /// returns the folder's file this write created, which the write
    /// removes if it does not commit.
    pub async fn place(
        &self,
        conn: &mut PgConnection,
        family_id: Uuid,
        received: &Received,
        kind: FileKind,
    ) -> Result<Option<PathBuf>, ApiError> {
        // One writer of a family's file at a time, until its transaction
        // ends: a write that fails removes only what no other holds.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))")
            .bind(lock_name(family_id, &received.sha256))
            .bind(FILE_LOCKS)
            .execute(&mut *conn)
            .await
            .map_err(internal)?;
        let inserted = sqlx::query(
            "INSERT INTO stored_files (family_id, sha256, size, media_type) VALUES ($1, $2, $3, $4)
             ON CONFLICT (family_id, sha256) DO NOTHING",
        )
        .bind(family_id)
        .bind(&received.sha256)
        .bind(received.size as i64)
        .bind(kind.media_type())
        .execute(&mut *conn)
        .await
        .map_err(internal)?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(None);
        }
        let mut source = received.file.try_clone().map_err(internal)?;
        match &self.settings.storage {
            Storage::Table => {
                let content = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
                    let mut content = Vec::new();
                    source.seek(SeekFrom::Start(0))?;
                    source.read_to_end(&mut content)?;
                    Ok(content)
                })
                .await
                .map_err(internal)?
                .map_err(internal)?;
                sqlx::query(
                    "INSERT INTO stored_file_contents (family_id, sha256, content) VALUES ($1, $2, $3)",
                )
                .bind(family_id)
                .bind(&received.sha256)
                .bind(content)
                .execute(&mut *conn)
                .await
                .map_err(internal)?;
                Ok(None)
            }
            Storage::Folder(folder) => {
                let target = path_in(folder, family_id, &received.sha256);
                let placed = target.clone();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    let directory = target.parent().expect("a file's path has its family's folder");
                    std::fs::create_dir_all(directory)?;
                    let partial = directory.join(format!(".{}.part", Uuid::new_v4().simple()));
                    let mut out = std::fs::File::create(&partial)?;
                    source.seek(SeekFrom::Start(0))?;
                    std::io::copy(&mut source, &mut out)?;
                    out.flush()?;
                    out.sync_all()?;
                    std::fs::rename(&partial, &target)
                })
                .await
                .map_err(internal)?
                .map_err(internal)?;
                Ok(Some(placed))
            }
        }
    }

    /// The stored content of a family's file, and its media type.
    pub async fn read(
        &self,
        pool: &PgPool,
        family_id: Uuid,
        sha256: &str,
    ) -> Result<Option<(Content, String)>, ApiError> {
        let media_type: Option<String> =
            sqlx::query_scalar("SELECT media_type FROM stored_files WHERE family_id = $1 AND sha256 = $2")
                .bind(family_id)
                .bind(sha256)
                .fetch_optional(pool)
                .await
                .map_err(internal)?;
        let Some(media_type) = media_type else {
            return Ok(None);
        };
        let content = match &self.settings.storage {
            Storage::Table => sqlx::query_scalar(
                "SELECT content FROM stored_file_contents WHERE family_id = $1 AND sha256 = $2",
            )
            .bind(family_id)
            .bind(sha256)
            .fetch_optional(pool)
            .await
            .map_err(internal)?
            .map(Content::Memory),
            Storage::Folder(folder) => {
                match tokio::fs::File::open(path_in(folder, family_id, sha256)).await {
                    Ok(file) => Some(Content::Folder(file)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => return Err(internal(e)),
                }
            }
        };
        Ok(content.map(|c| (c, media_type)))
    }

    /// Removes an erased family's folder, once its rows are gone.
    pub fn remove_family(&self, family_id: Uuid) {
        if let Storage::Folder(folder) = &self.settings.storage {
            let path = folder.join(family_id.to_string());
            if let Err(e) = std::fs::remove_dir_all(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::error!(%family_id, error = %e, "an erased family's files could not be removed");
                }
            }
        }
    }

    fn mac(&self, account_id: Uuid, request_id: Uuid, sha256: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(format!("{account_id}\n{request_id}\n{sha256}\n{expires}").as_bytes());
        mac
    }

    /// The path of a download link of a request's file for `account_id`,
    /// valid until `now` plus the links' lifetime.
    pub fn link(&self, account_id: Uuid, request_id: Uuid, sha256: &str, now: DateTime<Utc>) -> String {
        let expires = now.timestamp() + self.settings.link_valid_for.as_secs() as i64;
        let signature = hex::encode(
            self.mac(account_id, request_id, sha256, expires)
                .finalize()
                .into_bytes(),
        );
        format!("/fichiers/{request_id}/{sha256}?expire={expires}&signature={signature}")
    }

    /// Whether a link's signature is this server's for `account_id`, and
    /// the link has not expired at `now`.
    pub fn verify_link(
        &self,
        account_id: Uuid,
        request_id: Uuid,
        sha256: &str,
        expires: i64,
        signature: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        expires >= now.timestamp()
            && self
                .mac(account_id, request_id, sha256, expires)
                .verify_slice(&signature)
                .is_ok()
    }
}

/// Deletes an erased family's files' rows (and their contents in the
/// table), in the erasure's transaction.
pub async fn forget_family(conn: &mut PgConnection, family_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM stored_files WHERE family_id = $1")
        .bind(family_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, "file storage failed");
    ApiError::Internal(say("api.file_storage", &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(content: &[u8]) -> Received {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        inspect(" carte\u{7}.pdf ", file).unwrap()
    }

    #[test]
    fn a_files_kind_comes_from_its_content_not_its_name() {
        let pdf = received(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n");
        assert_eq!(pdf.kind, Some(FileKind::Pdf));
        assert_eq!(pdf.name, "carte.pdf");
        assert_eq!(pdf.size, 29);
        assert_eq!(
            pdf.sha256,
            hex::encode(Sha256::digest(b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"))
        );
        let png = received(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
        assert_eq!(png.kind, Some(FileKind::Png));
        let jpeg = received(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F']);
        assert_eq!(jpeg.kind, Some(FileKind::Jpeg));
        let html = received(b"<!DOCTYPE html><html><script>alert(1)</script></html>");
        assert_eq!(html.kind, None);
    }

    #[test]
    fn a_link_works_for_its_account_its_file_and_until_it_expires() {
        let files = Files {
            settings: FileSettings::default(),
            secret: vec![7; 32],
        };
        let (account, request, sha) = (Uuid::from_u128(1), Uuid::from_u128(2), "ab".repeat(32));
        let now = Utc::now();
        let link = files.link(account, request, &sha, now);
        let query = link.split_once('?').unwrap().1;
        let parameters: std::collections::HashMap<_, _> = form_urlencoded::parse(query.as_bytes()).collect();
        let expires: i64 = parameters["expire"].parse().unwrap();
        let signature = &parameters["signature"];
        assert!(files.verify_link(account, request, &sha, expires, signature, now));
        assert!(!files.verify_link(Uuid::from_u128(3), request, &sha, expires, signature, now));
        assert!(!files.verify_link(account, Uuid::from_u128(3), &sha, expires, signature, now));
        assert!(!files.verify_link(account, request, &sha, expires + 1, signature, now));
        let later = now + chrono::Duration::seconds(16 * 60);
        assert!(!files.verify_link(account, request, &sha, expires, signature, later));
        assert!(!files.verify_link(account, request, &sha, expires, "zz", now));
    }
}
