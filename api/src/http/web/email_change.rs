//! The page of the link that confirms a new e-mail address. Opening the
//! link changes nothing (a mail filter may open it on its own): the page
//! asks for one click on "Confirmer", which posts the form.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form as Posted;
use maud::html;
use serde::Deserialize;

use super::csrf;
use super::links::{failure_page, forged, link_state, page, refused, secure_cookie, unusable, TokenQuery};
use super::pages::{self, Errors, Form};
use crate::auth::accounts::TokenPurpose;
use crate::error::ApiError;
use crate::http::AppState;
use crate::services::credentials::{self, LinkState};

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConfirmationForm {
    token: String,
    csrf: String,
}

/// `GET /confirmation-email?token=…`: what will change, and the button.
pub async fn form(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let (email, new_email) = match link_state(&state, query.token(), TokenPurpose::EmailChange).await {
        Ok(LinkState::Valid {
            email,
            new_email: Some(new_email),
            ..
        }) => (email, new_email),
        Ok(LinkState::Valid { .. }) => return unusable(LinkState::Invalid, TokenPurpose::EmailChange),
        Ok(other) => return unusable(other, TokenPurpose::EmailChange),
        Err(error) => return failure_page(&error),
    };
    let token = csrf::for_form(&headers, secure_cookie(&state));
    let intro = html! {
        p { "Votre compte Espace Famille utilise l'adresse " strong { (email) } "." }
        p { "Confirmez qu'il utilise désormais " strong { (new_email) } " : c'est à cette adresse que vous vous connecterez et recevrez les messages de la mairie." }
    };
    let form = Form {
        action: "/confirmation-email",
        hidden: vec![("token", query.token()), ("csrf", &token.value)],
        fields: Vec::new(),
        button: "Confirmer",
    };
    let html = pages::form_page("Nouvelle adresse e-mail", intro, &form, &Errors::default());
    page(StatusCode::OK, html, token.set_cookie)
}

/// `POST /confirmation-email`: the account takes the new address.
pub async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(form): Posted<ConfirmationForm>,
) -> Response {
    if !csrf::accepts(&headers, &form.csrf) {
        return forged(format!("/confirmation-email?token={}", form.token.trim()));
    }
    match credentials::confirm_email_change(&state.commands, &form.token, &state.auth.mail).await {
        Ok(account) => {
            state.sessions.forget_account(account.id);
            let body = pages::message(
                "Adresse e-mail changée",
                html! {
                    p { "Votre compte utilise désormais l'adresse " strong { (account.email) } " : connectez-vous avec elle et votre mot de passe habituel." }
                    p { a href=(state.auth.mail.public_url) { "Aller au portail" } }
                },
            );
            page(StatusCode::OK, body, None)
        }
        Err(ApiError::Conflict(_)) => {
            let body = pages::message(
                "Adresse déjà utilisée",
                html! { p { "Cette adresse est devenue celle d'un autre compte entre-temps : votre compte garde son adresse actuelle." } },
            );
            page(StatusCode::CONFLICT, body, None)
        }
        Err(error) => refused(error, TokenPurpose::EmailChange),
    }
}
