//! The store's errors, apart from the store so that what it uses (the
//! encryption of personal values) can name them without a cycle.

/// What went wrong reading or writing events.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to one of the streams since it was loaded.
    #[error("a stream changed while the command ran")]
    Conflict,
    /// An event would introduce an id that already names something else
    /// (the `claimed_ids` table).
    #[error("this id is already used")]
    IdTaken,
    #[error("stored event cannot be read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A unique key violated by an insert means another writer got there first;
/// a transaction refused by the projections' fence (SQLSTATE 40001, see
/// `engine::fence`) lost a race too: both are tried again.
pub fn conflict_or_database(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("claimed_ids_pkey") => StoreError::IdTaken,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.code().as_deref() == Some("40001") => StoreError::Conflict,
        _ => StoreError::Database(error),
    }
}
