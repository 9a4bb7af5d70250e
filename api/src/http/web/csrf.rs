//! The token every form carries against cross-site requests: a random
//! value set in a `SameSite=Strict` cookie when the form is shown, and
//! repeated in a hidden field; a post is taken only when both match and
//! the browser does not say it comes from another site.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

const COOKIE: &str = "ef_csrf";

/// The form's token, and the cookie to set when the browser had none.
pub struct FormToken {
    pub value: String,
    pub set_cookie: Option<HeaderValue>,
}

fn cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|value| value.len() == 43 && URL_SAFE_NO_PAD.decode(value).is_ok())
}

/// The token for a form: the browser's own when it has one.
pub fn for_form(headers: &HeaderMap, secure: bool) -> FormToken {
    if let Some(value) = cookie_of(headers) {
        return FormToken {
            value,
            set_cookie: None,
        };
    }
    let bytes: [u8; 32] = rand::random();
    let value = URL_SAFE_NO_PAD.encode(bytes);
    let cookie = format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=86400{}",
        if secure { "; Secure" } else { "" }
    );
    FormToken {
        value,
        set_cookie: HeaderValue::from_str(&cookie).ok(),
    }
}

/// Whether a posted form may be taken: the browser does not call it
/// cross-site (or, where it does not say, its `Origin` is this host), and
/// the field matches the cookie.
pub fn accepts(headers: &HeaderMap, field: &str) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // A browser that says where the request comes from is believed; its
    // `Origin` is then `null`, the pages sending no referrer.
    if let Some(site) = text("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return false;
        }
    } else if let Some(origin) = text("origin").filter(|o| *o != "null") {
        let host = text("host").unwrap_or_default();
        let authority = origin.split_once("://").map(|(_, a)| a).unwrap_or_default();
        if authority.is_empty() || !authority.eq_ignore_ascii_case(host) {
            return false;
        }
    }
    match cookie_of(headers) {
        // Compared as digests: the time taken tells nothing of the value.
        Some(cookie) => Sha256::digest(cookie.as_bytes()) == Sha256::digest(field.as_bytes()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn a_form_is_taken_only_with_its_cookie_from_its_own_site() {
        let token = for_form(&HeaderMap::new(), false);
        let cookie = token.set_cookie.unwrap();
        let cookie = cookie.to_str().unwrap().split(';').next().unwrap().to_string();
        assert!(cookie.ends_with(&token.value));
        let same = headers(&[("cookie", &cookie), ("host", "a.fr"), ("origin", "https://a.fr")]);
        assert!(accepts(&same, &token.value));
        assert!(!accepts(&same, "another value"));
        assert!(!accepts(&headers(&[("host", "a.fr")]), &token.value), "no cookie");
        let other_site = headers(&[("cookie", &cookie), ("host", "a.fr"), ("origin", "https://b.fr")]);
        assert!(!accepts(&other_site, &token.value));
        let cross = headers(&[("cookie", &cookie), ("sec-fetch-site", "cross-site")]);
        assert!(!accepts(&cross, &token.value));
        let same_site = headers(&[("cookie", &cookie), ("sec-fetch-site", "same-site")]);
        assert!(!accepts(&same_site, &token.value));
        // Chromium's form post from a page sending no referrer.
        let null = headers(&[
            ("cookie", &cookie),
            ("sec-fetch-site", "same-origin"),
            ("origin", "null"),
        ]);
        assert!(accepts(&null, &token.value));
        // The browser keeps its token while its cookie lives.
        assert_eq!(for_form(&same, false).value, token.value);
        assert!(for_form(&same, false).set_cookie.is_none());
    }
}
