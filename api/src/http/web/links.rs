//! The pages the commune's e-mails link to: activate the account, choose a
//! new password, ask for a new link. Each shows its form on `GET` (the
//! token is read, not used) and does the work on `POST`, through the same
//! service as the GraphQL mutations ([`crate::services::credentials`]).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form as Posted;
use espace_famille_domain::family::is_plausible_phone;
use espace_famille_domain::text::{self, TextError};
use maud::html;
use serde::Deserialize;

use super::csrf;
use super::pages::{self, Errors, Field, Form};
use crate::auth::accounts::{self, TokenPurpose, MIN_PASSWORD_LENGTH};
use crate::error::{ApiError, ErrorCode};
use crate::http::AppState;
use crate::services::credentials::{self, LinkState, Profile};

/// The longest token looked up: the server's own are 43 characters.
const MAX_TOKEN_CHARS: usize = 128;

/// `GET /`: where the links' pages lead back to when no portal of its own
/// is configured (`PUBLIC_URL` names this server).
pub async fn home() -> Response {
    let body = pages::message(
        "Espace Famille",
        html! {
            p { "Ce serveur porte l'Espace Famille de votre commune : réservations de cantine, d'étude et d'accueil, factures et demandes." }
            ul {
                li { a href="/mot-de-passe-oublie" { "Mot de passe oublié, ou lien d'activation expiré" } }
                li { a href="/graphql" { "Explorer l'API (GraphiQL)" } }
            }
        },
    );
    page(StatusCode::OK, body, None)
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

impl TokenQuery {
    pub(super) fn token(&self) -> &str {
        self.token.trim()
    }
}

pub(super) fn page(status: StatusCode, html: String, set_cookie: Option<header::HeaderValue>) -> Response {
    let mut response = (status, Html(html)).into_response();
    if let Some(cookie) = set_cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    super::page_headers(response)
}

pub(super) fn secure_cookie(state: &AppState) -> bool {
    state.auth.mail.public_url.starts_with("https://")
}

pub(super) async fn link_state(
    state: &AppState,
    token: &str,
    purpose: TokenPurpose,
) -> Result<LinkState, ApiError> {
    if token.trim().is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Ok(LinkState::Invalid);
    }
    credentials::peek(&state.commands.pool, token, purpose).await
}

/// The page of a link that cannot be used, with the way to a new one.
pub(super) fn unusable(state: LinkState, purpose: TokenPurpose) -> Response {
    let what = match purpose {
        TokenPurpose::Activation => "d'activation",
        TokenPurpose::PasswordReset => "de réinitialisation",
        TokenPurpose::EmailChange => "de confirmation",
    };
    let (status, title, why) = match state {
        LinkState::Expired => (
            StatusCode::GONE,
            "Ce lien a expiré",
            format!(
                "Ce lien {what} n'est plus valable : par sécurité, il ne sert que pendant une durée limitée."
            ),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "Ce lien n'est pas valide",
            format!("Ce lien {what} a déjà servi, a été remplacé par un lien plus récent, ou est incomplet."),
        ),
    };
    let next = if purpose == TokenPurpose::EmailChange {
        html! {
            p { (why) }
            p { "Votre compte garde son adresse actuelle. Pour en changer, faites une nouvelle demande depuis votre profil : un nouveau lien sera envoyé à la nouvelle adresse." }
        }
    } else {
        html! {
            p { (why) }
            p {
                "Pour recevoir un nouveau lien, "
                a href="/mot-de-passe-oublie" { "saisissez votre adresse e-mail" }
                " : si votre compte n'est pas encore activé, vous recevrez un nouveau lien d'activation ; "
                "sinon, un lien pour choisir un nouveau mot de passe."
            }
            p { "Si votre compte est déjà activé, connectez-vous avec votre adresse e-mail et votre mot de passe." }
        }
    };
    let body = pages::message(title, next);
    page(status, body, None)
}

pub(super) fn failure_page(error: &ApiError) -> Response {
    let (status, text) = match error {
        ApiError::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Le service est momentanément indisponible. Réessayez dans quelques instants : rien n'a été enregistré.",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Une erreur est survenue de notre côté. Réessayez plus tard ; si elle persiste, contactez votre mairie.",
        ),
    };
    if let ApiError::Internal(detail) = error {
        tracing::error!(%detail, "a link's page failed");
    }
    page(
        status,
        pages::message("Une erreur est survenue", html! { p { (text) } }),
        None,
    )
}

/// What the service's answer means for the page that posted: a link no
/// longer usable, or a failure (the form's own errors come before).
pub(super) fn refused(error: ApiError, purpose: TokenPurpose) -> Response {
    match error.code() {
        ErrorCode::InvalidToken => unusable(LinkState::Invalid, purpose),
        ErrorCode::TokenExpired => unusable(LinkState::Expired, purpose),
        _ => failure_page(&error),
    }
}

/// A form posted without its token, or from another site.
pub(super) fn forged(back: String) -> Response {
    let body = pages::message(
        "Cette page a expiré",
        html! {
            p { "Le formulaire n'a pas pu être vérifié (il a peut-être été ouvert il y a trop longtemps, ou depuis un autre site). Rien n'a été enregistré." }
            p { a href=(back) { "Rouvrir le formulaire" } }
        },
    );
    page(StatusCode::FORBIDDEN, body, None)
}

fn password_hint() -> Option<String> {
    Some(format!(
        "Au moins {MIN_PASSWORD_LENGTH} caractères. Une phrase de plusieurs mots est plus facile à retenir. \
         Pas un mot de passe courant, ni votre adresse e-mail."
    ))
}

fn password_fields<'a>() -> Vec<Field<'a>> {
    vec![
        Field {
            name: "password",
            label: "Mot de passe",
            kind: "password",
            value: "",
            hint: password_hint(),
            required: true,
            autocomplete: "new-password",
        },
        Field {
            name: "password_confirmation",
            label: "Confirmez le mot de passe",
            kind: "password",
            value: "",
            hint: None,
            required: true,
            autocomplete: "new-password",
        },
    ]
}

fn check_new_password(errors: &mut Errors, password: &str, confirmation: &str, email: &str) {
    if password.is_empty() {
        errors.add("password", "Choisissez un mot de passe.");
    } else if let Err(refusal) = accounts::check_password(password, email) {
        errors.add("password", refusal.said());
    } else if password != confirmation {
        errors.add(
            "password_confirmation",
            "Les deux mots de passe ne sont pas identiques.",
        );
    }
}

/// A name or phone number as the domain bounds it; the French reason when
/// it is refused.
fn check_text(
    errors: &mut Errors,
    field: &'static str,
    what: &str,
    value: &str,
    required: bool,
    max: usize,
) -> Option<String> {
    match text::optional(field, Some(value), max) {
        Ok(None) if required => {
            errors.add(field, format!("Indiquez {what}."));
            None
        }
        Ok(value) => value,
        Err(TextError::TooLong { max, .. }) => {
            errors.add(field, format!("Ce champ compte au plus {max} caractères."));
            None
        }
        Err(_) => {
            errors.add(field, "Ce champ contient un caractère non autorisé.");
            None
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ActivationForm {
    token: String,
    csrf: String,
    first_name: String,
    last_name: String,
    phone: String,
    password: String,
    password_confirmation: String,
}

fn activation_page(
    email: &str,
    asks_profile: bool,
    form: &ActivationForm,
    csrf: &str,
    errors: &Errors,
) -> String {
    let mut fields = Vec::new();
    if asks_profile {
        fields.push(Field {
            name: "first_name",
            label: "Prénom",
            kind: "text",
            value: &form.first_name,
            hint: None,
            required: true,
            autocomplete: "given-name",
        });
        fields.push(Field {
            name: "last_name",
            label: "Nom",
            kind: "text",
            value: &form.last_name,
            hint: None,
            required: true,
            autocomplete: "family-name",
        });
        fields.push(Field {
            name: "phone",
            label: "Téléphone",
            kind: "tel",
            value: &form.phone,
            hint: Some("Pour que la mairie puisse vous joindre au sujet de vos enfants.".into()),
            required: false,
            autocomplete: "tel",
        });
    }
    fields.extend(password_fields());
    let intro = html! {
        p { "Votre commune a ouvert votre compte Espace Famille pour l'adresse " strong { (email) } "." }
        p { "Complétez votre profil et choisissez votre mot de passe, puis enregistrez." }
    };
    let form = Form {
        action: "/activation",
        hidden: vec![("token", &form.token), ("csrf", csrf)],
        fields,
        button: "Enregistrer",
    };
    pages::form_page("Activer votre compte", intro, &form, errors)
}

/// `GET /activation?token=…`: the activation form.
pub async fn activation_form(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let (email, asks_profile) = match link_state(&state, &query.token, TokenPurpose::Activation).await {
        Ok(LinkState::Valid {
            email, asks_profile, ..
        }) => (email, asks_profile),
        Ok(other) => return unusable(other, TokenPurpose::Activation),
        Err(error) => return failure_page(&error),
    };
    let token = csrf::for_form(&headers, secure_cookie(&state));
    let form = ActivationForm {
        token: query.token.trim().to_string(),
        ..ActivationForm::default()
    };
    let html = activation_page(&email, asks_profile, &form, &token.value, &Errors::default());
    page(StatusCode::OK, html, token.set_cookie)
}

/// `POST /activation`: checks the form, then activates.
pub async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(form): Posted<ActivationForm>,
) -> Response {
    let back = format!("/activation?token={}", form.token.trim());
    if !csrf::accepts(&headers, &form.csrf) {
        return forged(back);
    }
    let (email, asks_profile) = match link_state(&state, &form.token, TokenPurpose::Activation).await {
        Ok(LinkState::Valid {
            email, asks_profile, ..
        }) => (email, asks_profile),
        Ok(other) => return unusable(other, TokenPurpose::Activation),
        Err(error) => return failure_page(&error),
    };
    let mut errors = Errors::default();
    let mut profile = Profile::default();
    if asks_profile {
        profile.first_name = check_text(
            &mut errors,
            "first_name",
            "votre prénom",
            &form.first_name,
            true,
            text::NAME,
        );
        profile.last_name = check_text(
            &mut errors,
            "last_name",
            "votre nom",
            &form.last_name,
            true,
            text::NAME,
        );
        profile.phone = check_text(
            &mut errors,
            "phone",
            "un numéro",
            &form.phone,
            false,
            text::REFERENCE,
        );
        if profile
            .phone
            .as_deref()
            .is_some_and(|phone| !is_plausible_phone(phone))
        {
            errors.add(
                "phone",
                "Saisissez un numéro de téléphone, par exemple 06 12 34 56 78.",
            );
        }
    }
    check_new_password(&mut errors, &form.password, &form.password_confirmation, &email);
    if errors.is_empty() {
        match credentials::activate(&state.commands, &form.token, &form.password, &profile, None).await {
            Ok(_) => {
                let body = pages::message(
                    "Votre compte est activé",
                    html! {
                        p { "Vous pouvez maintenant vous connecter au portail avec l'adresse " strong { (email) } " et le mot de passe que vous venez de choisir." }
                        p { a href=(state.auth.mail.public_url) { "Aller au portail" } }
                    },
                );
                return page(StatusCode::OK, body, None);
            }
            Err(ApiError::Validation(message)) => errors.general = Some(message),
            Err(error) => return refused(error, TokenPurpose::Activation),
        }
    }
    let html = activation_page(&email, asks_profile, &form, &form.csrf, &errors);
    page(StatusCode::UNPROCESSABLE_ENTITY, html, None)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ResetForm {
    token: String,
    csrf: String,
    password: String,
    password_confirmation: String,
}

fn reset_page(email: &str, token: &str, csrf: &str, errors: &Errors) -> String {
    let intro = html! {
        p { "Choisissez le nouveau mot de passe du compte " strong { (email) } "." }
        p { "Une fois enregistré, vos autres sessions ouvertes sont fermées." }
    };
    let form = Form {
        action: "/reinitialisation",
        hidden: vec![("token", token), ("csrf", csrf)],
        fields: password_fields(),
        button: "Enregistrer",
    };
    pages::form_page("Nouveau mot de passe", intro, &form, errors)
}

/// `GET /reinitialisation?token=…`: the new-password form.
pub async fn reset_form(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let email = match link_state(&state, &query.token, TokenPurpose::PasswordReset).await {
        Ok(LinkState::Valid { email, .. }) => email,
        Ok(other) => return unusable(other, TokenPurpose::PasswordReset),
        Err(error) => return failure_page(&error),
    };
    let token = csrf::for_form(&headers, secure_cookie(&state));
    let html = reset_page(&email, query.token.trim(), &token.value, &Errors::default());
    page(StatusCode::OK, html, token.set_cookie)
}

/// `POST /reinitialisation`: checks the form, then sets the password.
pub async fn reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Posted(form): Posted<ResetForm>,
) -> Response {
    let back = format!("/reinitialisation?token={}", form.token.trim());
    if !csrf::accepts(&headers, &form.csrf) {
        return forged(back);
    }
    let email = match link_state(&state, &form.token, TokenPurpose::PasswordReset).await {
        Ok(LinkState::Valid { email, .. }) => email,
        Ok(other) => return unusable(other, TokenPurpose::PasswordReset),
        Err(error) => return failure_page(&error),
    };
    let mut errors = Errors::default();
    check_new_password(&mut errors, &form.password, &form.password_confirmation, &email);
    if errors.is_empty() {
        match credentials::reset_password(&state.commands.pool, &form.token, &form.password, None).await {
            Ok((account, _)) => {
                state.sessions.forget_account(account.id);
                let body = pages::message(
                    "Mot de passe enregistré",
                    html! {
                        p { "Votre nouveau mot de passe est enregistré. Connectez-vous au portail avec l'adresse " strong { (email) } "." }
                        p { a href=(state.auth.mail.public_url) { "Aller au portail" } }
                    },
                );
                return page(StatusCode::OK, body, None);
            }
            Err(ApiError::Validation(message)) => errors.general = Some(message),
            Err(error) => return refused(error, TokenPurpose::PasswordReset),
        }
    }
    let html = reset_page(&email, form.token.trim(), &form.csrf, &errors);
    page(StatusCode::UNPROCESSABLE_ENTITY, html, None)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ForgottenForm {
    csrf: String,
    email: String,
}

fn forgotten_page(email: &str, csrf: &str, errors: &Errors) -> String {
    let intro = html! {
        p { "Saisissez l'adresse e-mail de votre compte : vous y recevrez un lien pour choisir un nouveau mot de passe, ou un nouveau lien d'activation si votre compte n'est pas encore activé." }
    };
    let form = Form {
        action: "/mot-de-passe-oublie",
        hidden: vec![("csrf", csrf)],
        fields: vec![Field {
            name: "email",
            label: "Adresse e-mail",
            kind: "email",
            value: email,
            hint: None,
            required: true,
            autocomplete: "email",
        }],
        button: "Recevoir un lien",
    };
    pages::form_page("Mot de passe oublié", intro, &form, errors)
}

/// `GET /mot-de-passe-oublie`: asks for the e-mail.
pub async fn forgotten_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = csrf::for_form(&headers, secure_cookie(&state));
    let html = forgotten_page("", &token.value, &Errors::default());
    page(StatusCode::OK, html, token.set_cookie)
}

/// `POST /mot-de-passe-oublie`: as `requestPasswordReset`, the same answer
/// whether the e-mail has an account or not, the link sent after it.
pub async fn forgotten(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Posted(form): Posted<ForgottenForm>,
) -> Response {
    if !csrf::accepts(&headers, &form.csrf) {
        return forged("/mot-de-passe-oublie".into());
    }
    let mut errors = Errors::default();
    if accounts::normalised_email(&form.email).is_none() {
        errors.add(
            "email",
            "Saisissez une adresse e-mail valide, par exemple nom@exemple.fr.",
        );
    } else {
        let settings = state.auth.clone();
        let pool = state.commands.pool.clone();
        let counted = accounts::count_reset_request(
            &pool,
            &form.email,
            &client.ip().to_string(),
            settings.reset_limits,
        )
        .await;
        match counted {
            Ok(counted) => {
                if let Some(email) = counted {
                    tokio::spawn(async move {
                        if let Err(error) = accounts::send_password_reset(&pool, &email, &settings).await {
                            tracing::error!(?error, "a password-reset link was not sent");
                        }
                    });
                }
                let body = pages::message(
                    "Vérifiez votre messagerie",
                    html! {
                        p { "Si un compte Espace Famille existe pour l'adresse " strong { (form.email.trim()) } ", un lien vient d'y être envoyé." }
                        p { "Il ne sert qu'une fois. Pensez à regarder dans les courriers indésirables." }
                    },
                );
                return page(StatusCode::OK, body, None);
            }
            Err(error) if error.code() == ErrorCode::RateLimited => {
                errors.general = Some(
                    "Trop de demandes ont été faites pour cette adresse : réessayez dans une heure.".into(),
                );
                let html = forgotten_page(&form.email, &form.csrf, &errors);
                return page(StatusCode::TOO_MANY_REQUESTS, html, None);
            }
            Err(error) => return failure_page(&error),
        }
    }
    let html = forgotten_page(&form.email, &form.csrf, &errors);
    page(StatusCode::UNPROCESSABLE_ENTITY, html, None)
}
