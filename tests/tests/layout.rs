//! Rules of the layout that the compiler does not check.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Whether `line` holds `pattern` followed by the end of a name (so that
/// `events_fence` is not `events`).
fn names_the_table(line: &str, pattern: &str) -> bool {
    line.match_indices(pattern).any(|(at, _)| {
        line[at + pattern.len()..]
            .chars()
            .next()
            .is_none_or(|next| !(next.is_alphanumeric() || next == '_'))
    })
}

/// Only the store writes SQL over the events and the families' keys: every
/// other module reads and writes them through it (or composes the SQL it
/// gives, `store::sql`).
#[test]
fn only_the_store_writes_sql_over_events_and_family_keys() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let store = workspace.join("projections/src/store");
    let mut files = Vec::new();
    for crate_dir in ["domain/src", "projections/src", "api/src"] {
        rust_files(&workspace.join(crate_dir), &mut files);
    }
    assert!(files.len() > 50, "{} files", files.len());
    let mut offending = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&store)) {
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let line = line.to_lowercase();
            let sql = line.contains("family_keys")
                || ["from events", "into events", "join events", "update events"]
                    .iter()
                    .any(|pattern| names_the_table(&line, pattern));
            if sql && !line.trim_start().starts_with("//") {
                offending.push(format!("{}:{}", file.display(), number + 1));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "SQL over events outside the store: {offending:#?}"
    );
}
