//! The GraphQL multipart request (github.com/jaydenseric/graphql-multipart-request-spec),
//! read here rather than by async-graphql so that every part has its own
//! bound: `operations` takes no more than a JSON body may (and is checked
//! as one is), `map` a few kilobytes, a file the request's limit, and no
//! more files than a request may carry. Each file is spooled to a
//! temporary file as it arrives, off the async workers, never whole in
//! memory.

use std::collections::HashMap;

use async_graphql::{Request, UploadValue};
use axum::body::Body;
use axum::http::StatusCode;
use futures::TryStreamExt;
use tokio::io::AsyncWriteExt;

use super::{request_of, JsonBody, Refused};
use crate::error::ErrorCode;
use crate::http::AppState;
use crate::i18n::say;

/// The largest `map` part: a path or two for each of the few files a
/// request may carry.
const MAX_MAP_BYTES: u64 = 16 * 1024;

/// Reads a multipart request into a GraphQL request with its uploads.
pub(super) async fn read(state: &AppState, content_type: &str, body: Body) -> Result<Request, Refused> {
    let settings = &state.files.settings;
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| Refused::bad_request("the multipart request names no boundary"))?;
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(settings.max_request_bytes + state.max_body_bytes as u64 + MAX_MAP_BYTES)
            .per_field(settings.max_request_bytes)
            .for_field("operations", state.max_body_bytes as u64)
            .for_field("map", MAX_MAP_BYTES),
    );
    let too_large = || Refused {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: ErrorCode::Validation,
        message: say(
            "api.request_too_large",
            &[(
                "max",
                &format!("{} Mio", settings.max_request_bytes / (1024 * 1024)),
            )],
        ),
    };
    let part_limit = |name: &str| match name {
        "map" => MAX_MAP_BYTES,
        _ => state.max_body_bytes as u64,
    };
    let unreadable = |error: multer::Error| match error {
        multer::Error::FieldSizeExceeded {
            field_name: Some(name),
            ..
        } if name.as_str() == "operations" || name.as_str() == "map" => Refused {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: ErrorCode::Validation,
            message: format!("the `{name}` part takes at most {} bytes", part_limit(&name)),
        },
        multer::Error::FieldSizeExceeded { .. }
        | multer::Error::StreamSizeExceeded { .. }
        | multer::Error::StreamReadFailed(_) => too_large(),
        other => Refused::bad_request(format!("the multipart request cannot be read: {other}")),
    };
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut parts = multer::Multipart::with_constraints(stream, boundary, constraints);
    let mut operations = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut files = Vec::new();
    while let Some(mut part) = parts.next_field().await.map_err(unreadable)? {
        match part.name() {
            Some("operations") => operations = Some(part.bytes().await.map_err(unreadable)?),
            Some("map") => {
                let bytes = part.bytes().await.map_err(unreadable)?;
                map = Some(serde_json::from_slice(&bytes).map_err(|e| {
                    Refused::bad_request(format!("the `map` part is not a map of files to paths: {e}"))
                })?);
            }
            Some(name) => {
                let name = name.to_string();
                let Some(filename) = part.file_name().map(str::to_string) else {
                    return Err(Refused::bad_request(format!(
                        "the part `{name}` is neither `operations`, `map` nor a file"
                    )));
                };
                if files.len() == settings.max_files {
                    // As the request's own check says it (`check_files`),
                    // but before the next file is even spooled.
                    return Err(Refused::graphql(
                        ErrorCode::FileRefused,
                        say("api.too_many_files", &[("max", &settings.max_files)]),
                    ));
                }
                let content_type = part.content_type().map(|m| m.to_string());
                let spooled = tempfile::tempfile().map_err(|_| storage_failed())?;
                let mut file = tokio::fs::File::from_std(spooled);
                while let Some(chunk) = part.chunk().await.map_err(unreadable)? {
                    file.write_all(&chunk).await.map_err(|_| storage_failed())?;
                }
                file.flush().await.map_err(|_| storage_failed())?;
                let content = file.into_std().await;
                files.push((
                    name,
                    UploadValue {
                        filename,
                        content_type,
                        content,
                    },
                ));
            }
            None => {
                return Err(Refused::bad_request(
                    "a part of the multipart request has no name",
                ))
            }
        }
    }
    let operations =
        operations.ok_or_else(|| Refused::bad_request("the multipart request has no `operations`"))?;
    let mut map = map.ok_or_else(|| Refused::bad_request("the multipart request has no `map`"))?;
    let body: JsonBody = serde_json::from_slice(&operations).map_err(|error| {
        Refused::bad_request(format!(
            "the `operations` part is not one GraphQL request: {error}"
        ))
    })?;
    let mut request = request_of(body.query, body.operation_name, body.variables, body.extensions)?;
    for (name, upload) in files {
        let Some(paths) = map.remove(&name) else {
            return Err(Refused::bad_request(format!(
                "the file part `{name}` is not in the `map`"
            )));
        };
        for path in paths {
            let copy = upload.try_clone().map_err(|_| storage_failed())?;
            request.set_upload(&path, copy);
        }
    }
    if !map.is_empty() {
        return Err(Refused::bad_request(say("api.upload_missing", &[])));
    }
    Ok(request)
}

fn storage_failed() -> Refused {
    Refused {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: ErrorCode::Unavailable,
        message: say("api.file_storage", &[]),
    }
}
