//! The pages' HTML, in French: one layout, forms whose every field has its
//! label, its hint and its error beside it, and a summary of the errors at
//! the top that a screen reader announces. maud escapes every value.

use maud::{html, Markup, DOCTYPE};

/// One field of a form.
pub struct Field<'a> {
    pub name: &'static str,
    pub label: &'static str,
    /// `text`, `tel`, `email` or `password`.
    pub kind: &'static str,
    pub value: &'a str,
    pub hint: Option<String>,
    pub required: bool,
    /// The browser's autofill name (`given-name`, `new-password`...).
    pub autocomplete: &'static str,
}

/// What was wrong with a posted form: per field, and as a whole.
#[derive(Debug, Default)]
pub struct Errors {
    pub fields: Vec<(&'static str, String)>,
    pub general: Option<String>,
}

impl Errors {
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_none()
    }

    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        if self.of(field).is_none() {
            self.fields.push((field, message.into()));
        }
    }

    fn of(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, message)| message.as_str())
    }
}

/// A form: where it posts, its hidden values, its fields, its button.
pub struct Form<'a> {
    pub action: &'static str,
    pub hidden: Vec<(&'static str, &'a str)>,
    pub fields: Vec<Field<'a>>,
    pub button: &'static str,
}

fn layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Espace Famille" }
                link rel="stylesheet" href="/assets/portail.css";
            }
            body {
                header { p.brand { "Espace Famille" } }
                main id="contenu" {
                    h1 { (title) }
                    (content)
                }
            }
        }
    }
}

/// A page with a form; the errors of the last post, if any.
pub fn form_page(title: &str, intro: Markup, form: &Form, errors: &Errors) -> String {
    let content = html! {
        @if !errors.is_empty() {
            div.summary role="alert" aria-labelledby="erreurs-titre" tabindex="-1" {
                h2 id="erreurs-titre" { "Le formulaire contient des erreurs" }
                ul {
                    @if let Some(general) = &errors.general { li { (general) } }
                    @for (name, message) in &errors.fields {
                        li { a href={ "#" (name) } { (message) } }
                    }
                }
            }
        }
        (intro)
        form method="post" action=(form.action) novalidate {
            @for (name, value) in &form.hidden {
                input type="hidden" name=(name) value=(value);
            }
            @for field in &form.fields {
                @let error = errors.of(field.name);
                @let hint_id = format!("{}-aide", field.name);
                @let error_id = format!("{}-erreur", field.name);
                @let described = match (&field.hint, error) {
                    (Some(_), Some(_)) => Some(format!("{hint_id} {error_id}")),
                    (Some(_), None) => Some(hint_id.clone()),
                    (None, Some(_)) => Some(error_id.clone()),
                    (None, None) => None,
                };
                div.field.invalid[error.is_some()] {
                    label for=(field.name) {
                        (field.label)
                        @if !field.required { span.optional { " (facultatif)" } }
                    }
                    @if let Some(hint) = &field.hint { p.hint id=(hint_id) { (hint) } }
                    @if let Some(error) = error { p.error id=(error_id) { span.visually-hidden { "Erreur : " } (error) } }
                    input id=(field.name) name=(field.name) type=(field.kind)
                        value=[(field.kind != "password").then_some(field.value)]
                        autocomplete=(field.autocomplete)
                        required[field.required]
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[described];
                }
            }
            button type="submit" { (form.button) }
        }
    };
    layout(title, content).into_string()
}

/// A page that tells something, with what to do next.
pub fn message(title: &str, content: Markup) -> String {
    layout(title, content).into_string()
}
