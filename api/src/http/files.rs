//! `GET /fichiers/{request}/{sha256}?expire=…&signature=…`: a request's
//! file, downloaded. Every download checks, with the session's bearer
//! token: the link's signature (made for this account, unexpired), that
//! the caller may read the request (its family's guardians, its commune's
//! agents and auditors) and that the file is one the request names. The
//! answer is always an attachment, typed as stored (never HTML), never
//! sniffed by the browser; anyone else finds nothing (404), anonymous 401.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use espace_famille_domain::request::Request;
use uuid::Uuid;

use crate::error::ApiError;
use crate::files::Content;
use crate::http::AppState;

pub async fn download(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((request_id, sha256)): Path<(Uuid, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let answer = async {
        let caller = crate::documents::caller_of(&state, &headers).await?;
        let account_id = caller.identity()?.account_id;
        let expires: i64 = query
            .get("expire")
            .and_then(|e| e.parse().ok())
            .ok_or(ApiError::Forbidden)?;
        let signature = query.get("signature").ok_or(ApiError::Forbidden)?;
        if !state
            .files
            .verify_link(account_id, request_id, &sha256, expires, signature, Utc::now())
        {
            return Err(ApiError::Forbidden);
        }
        let request = crate::services::audit::as_of::<Request>(&state.commands, request_id, None).await?;
        let submitted = request.submitted.as_ref().ok_or(ApiError::Forbidden)?;
        caller.require_reader_of(submitted.family_id, &[submitted.collectivity_id])?;
        let file = request
            .files()
            .find(|f| f.sha256 == sha256)
            .ok_or(ApiError::Forbidden)?
            .clone();
        let (content, media_type) = state
            .files
            .read(&state.pool, submitted.family_id, &sha256)
            .await?
            .ok_or(ApiError::Forbidden)?;
        let body = match content {
            Content::Memory(bytes) => Body::from(bytes),
            Content::Folder(file) => Body::from_stream(tokio_util::io::ReaderStream::new(file)),
        };
        let name = file
            .file_name
            .known()
            .cloned()
            .unwrap_or_else(|| format!("piece-jointe.{}", file.kind.extension()));
        let mut response = (StatusCode::OK, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&media_type)
                .unwrap_or(HeaderValue::from_static("application/octet-stream")),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        );
        headers.insert(header::CONTENT_DISPOSITION, disposition(&name));
        Ok::<_, ApiError>(response)
    };
    answer.await.unwrap_or_else(|error| match error {
        ApiError::Unauthenticated => StatusCode::UNAUTHORIZED.into_response(),
        ApiError::Internal(why) => {
            tracing::error!(why, "a download failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    })
}

/// `attachment`, with the name in ASCII and, as RFC 6266 has it, in UTF-8.
fn disposition(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or(HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_always_an_attachment_whatever_its_name() {
        let value = disposition("certificat médical\".pdf");
        let text = value.to_str().unwrap();
        assert!(
            text.starts_with("attachment; filename=\"certificat m_dical_.pdf\""),
            "{text}"
        );
        assert!(
            text.contains("filename*=UTF-8''certificat%20m%C3%A9dical%22.pdf"),
            "{text}"
        );
    }
}
