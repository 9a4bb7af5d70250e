//! Secrets out of logs: a URL's password (database, SMTP) prints as `***`.

/// `url` with the password of its user part, and any `password=` query
/// parameter, replaced by `***`.
pub fn url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?', '#']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let user_info = &out[rest..rest + at];
            if let Some(colon) = user_info.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(query) = out.find('?') {
        let (head, tail) = out.split_at(query + 1);
        let redacted: Vec<String> = tail
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_prints_without_its_password() {
        assert_eq!(
            super::url("postgres://app:s3cr:et@db.mairie.fr:5432/famille"),
            "postgres://app:***@db.mairie.fr:5432/famille"
        );
        assert_eq!(
            super::url("smtps://relay%40mairie.fr:p%40ss@smtp.mairie.fr"),
            "smtps://relay%40mairie.fr:***@smtp.mairie.fr"
        );
        assert_eq!(
            super::url("postgres://db/famille?user=app&password=s3cret&sslmode=require"),
            "postgres://db/famille?user=app&password=***&sslmode=require"
        );
        assert_eq!(
            super::url("postgres://postgres@127.0.0.1:5432/x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
    }
}
