//! The uploads phase, on a server started for it alone (its memory is its
//! own): guardians send requests with one file each, as the GraphQL
//! multipart request. First 16 at once with 10 MiB each, the server's
//! resident memory read before and at its peak (a file is streamed to
//! disk, never held whole); then 1 MiB files, against the raw speed of
//! writing the same bytes, each file synced, into the same storage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use espace_famille_api::commands::Commands;
use espace_famille_domain::collectivity::{
    AttachmentRule, Collectivity, CollectivityCommand, FileKind, RequestCategory,
};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use espace_famille_tests::load::{guardian, id, report, system_metadata, Client};

const MIB: usize = 1024 * 1024;

/// A PDF of `size` bytes, unique to `n` (files of a family are stored once
/// by content: every upload must write its own).
fn pdf(size: usize, n: usize) -> Vec<u8> {
    let mut content = format!("%PDF-1.4\n% upload {n}\n").into_bytes();
    content.resize(size, b' ');
    content
}

/// The server's resident memory, current and peak, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn upload(client: &Client, token: &str, family: Uuid, content: Vec<u8>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let operations = json!({
        "query": "mutation($input: SubmitRequestInput!) { submitRequest(input: $input) { id } }",
        "variables": { "input": {
            "requestId": Uuid::new_v4(), "familyId": family, "collectivityId": id("commune", 0),
            "categoryId": id("upload-category", 0), "message": "Justificatif ci-joint.",
            "attachments": [{ "name": "document", "file": null }]
        } }
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text(
            "map",
            json!({ "0": ["variables.input.attachments.0.file"] }).to_string(),
        )
        .part(
            "0",
            reqwest::multipart::Part::bytes(content).file_name("justificatif.pdf"),
        );
    let answer: Value = client
        .http
        .post(&client.url)
        .bearer_auth(token)
        .header("GraphQL-Require-Preflight", "1")
        .multipart(form)
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(answer.get("errors").is_none(), "{answer}");
    Ok(started.elapsed())
}

/// `count` uploads of `size` bytes, `concurrency` at a time: their
/// latencies and the time they took together.
async fn uploads(
    client: &Arc<Client>,
    tokens: &[(String, Uuid)],
    size: usize,
    count: usize,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (worker, (token, family)) in tokens.iter().enumerate() {
        let (client, token, family) = (client.clone(), token.clone(), *family);
        let mine: Vec<usize> = (worker..count).step_by(tokens.len()).collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(mine.len());
            for n in mine {
                latencies.push(upload(&client, &token, family, pdf(size, n + size)).await?);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok((latencies, started.elapsed()))
}

/// The same bytes written as the server writes a file it keeps: a file of
/// its own, synced, renamed into place; `concurrency` writers at once.
fn raw_writes(folder: &Path, concurrency: usize, count: usize) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(folder)?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..concurrency)
            .map(|worker| {
                scope.spawn(move || -> std::io::Result<()> {
                    for n in (worker..count).step_by(concurrency) {
                        let partial = folder.join(format!(".{n}.part"));
                        let mut file = std::fs::File::create(&partial)?;
                        file.write_all(&pdf(MIB, n))?;
                        file.sync_all()?;
                        std::fs::rename(&partial, folder.join(n.to_string()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        writers
            .into_iter()
            .try_for_each(|w| w.join().expect("a writer panicked"))
    })?;
    let elapsed = started.elapsed();
    std::fs::remove_dir_all(folder)?;
    Ok(elapsed)
}

pub async fn run(
    pool: &PgPool,
    client: &Arc<Client>,
    files_dir: &Path,
    server_pid: u32,
    concurrency: usize,
    count: usize,
) -> anyhow::Result<()> {
    let commands = Commands::new(pool.clone(), Duration::from_secs(5));
    let category = RequestCategory {
        id: id("upload-category", 0),
        name: "Justificatif".into(),
        description: None,
        fields: vec![],
        attachments: vec![AttachmentRule {
            name: "document".into(),
            label: "Justificatif".into(),
            required: true,
            accepts: vec![FileKind::Pdf],
        }],
        justifies_absence: false,
        retired: false,
    };
    commands
        .execute::<Collectivity>(
            id("commune", 0),
            CollectivityCommand::DefineRequestCategory { category },
            &system_metadata(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut tokens = Vec::with_capacity(concurrency);
    for n in 0..concurrency {
        tokens.push((client.login(&guardian(n)).await?, id("family", n)));
    }
    let (before, _) = memory(server_pid);
    let (latencies, elapsed) = uploads(client, &tokens, 10 * MIB, concurrency).await?;
    let (_, peak) = memory(server_pid);
    report("upload_10mib", latencies, elapsed, concurrency);
    println!("upload_rss_before_kb={before}");
    println!("upload_10mib_peak_kb={peak}");
    let raw: PathBuf = files_dir.join("raw-writes");
    let raw = raw_writes(&raw, concurrency, count)?;
    println!("upload_raw_writes_per_s={:.1}", count as f64 / raw.as_secs_f64());
    let (latencies, elapsed) = uploads(client, &tokens, MIB, count).await?;
    report("upload", latencies, elapsed, count);
    println!("upload_concurrency={concurrency}");
    Ok(())
}
