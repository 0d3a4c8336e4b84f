//! The SOQL fleetauth sends to the Dev Hub, built here and nowhere else: every literal goes
//! through [`quote`], and a list of usernames is split into queries that fit in a GET URL.

use time::OffsetDateTime;

/// The ScratchOrgInfo fields fleetauth reads (reference dev-hub.md §2).
pub const FIELDS: &str = "Id, SignupUsername, ScratchOrg, LoginUrl, Status, ExpirationDate, CreatedDate, CreatedBy.Username";

/// The longest SOQL text put in one query URL: Salesforce refuses URLs past about 16 KB, and
/// percent-encoding grows the text (by about a third for lists of usernames).
const MAX_SOQL: usize = 9_000;

/// `text` as a SOQL string literal: single-quoted, with `\` `'` `"` and the control
/// characters SOQL has escapes for backslash-escaped. Any other control character has no
/// escape in SOQL: refused.
pub fn quote(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                return Err(format!(
                    "{:?} holds the control character U+{:04X}, which a SOQL literal cannot carry",
                    crate::sanitize::excerpt(text, 80),
                    u32::from(c)
                ))
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// A SOQL datetime literal (bare, UTC): `2026-12-01T00:00:00Z`.
pub fn datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The hub's Active scratch orgs, optionally created after a time and by a user.
pub fn active(
    created_after: Option<OffsetDateTime>,
    created_by: Option<&str>,
) -> Result<String, String> {
    let mut soql = format!("SELECT {FIELDS} FROM ScratchOrgInfo WHERE Status = 'Active'");
    if let Some(t) = created_after {
        soql.push_str(&format!(" AND CreatedDate >= {}", datetime(t)));
    }
    if let Some(user) = created_by {
        soql.push_str(&format!(" AND CreatedBy.Username = {}", quote(user)?));
    }
    soql.push_str(" ORDER BY CreatedDate");
    Ok(soql)
}

/// The ScratchOrgInfo rows of `usernames`, whatever their status, in as few queries as fit.
pub fn by_username(usernames: &[&str]) -> Result<Vec<String>, String> {
    let head = format!("SELECT {FIELDS} FROM ScratchOrgInfo WHERE SignupUsername IN (");
    let mut queries = Vec::new();
    let mut current = head.clone();
    let mut in_current = 0;
    for name in usernames {
        let literal = quote(name)?;
        if in_current > 0 && current.len() + literal.len() + 3 > MAX_SOQL {
            current.push(')');
            queries.push(std::mem::replace(&mut current, head.clone()));
            in_current = 0;
        }
        if in_current > 0 {
            current.push_str(", ");
        }
        current.push_str(&literal);
        in_current += 1;
    }
    if in_current > 0 {
        current.push(')');
        queries.push(current);
    }
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quote("o'brien@x.com").unwrap(), r"'o\'brien@x.com'");
        assert_eq!(quote(r"ops\o'neil").unwrap(), r"'ops\\o\'neil'");
        assert_eq!(quote(r"\'").unwrap(), r"'\\\''");
        assert_eq!(quote("say \"hi\"\n").unwrap(), r#"'say \"hi\"\n'"#);
        assert_eq!(quote("tab\there").unwrap(), r"'tab\there'");
        assert!(quote("bell\u{7}").is_err());
    }

    #[test]
    fn an_escaped_literal_never_ends_early() {
        // Whatever the text, the literal is one token: no quote inside it is unescaped.
        for text in [
            "'",
            "\\",
            "\\'",
            "'' OR Id != ''",
            "a\\\\'b",
            "x' AND Status = 'Deleted",
        ] {
            let q = quote(text).unwrap();
            let inner = &q[1..q.len() - 1];
            let mut escaped = false;
            for c in inner.chars() {
                assert!(escaped || c != '\'', "{text:?} → {q}");
                escaped = !escaped && c == '\\';
            }
            assert!(!escaped, "{text:?} ends in a lone backslash: {q}");
        }
    }

    #[test]
    fn many_usernames_are_split_into_queries_that_fit_a_url() {
        let names: Vec<String> = (0..2500)
            .map(|i| format!("test-user{i}@example.com"))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let queries = by_username(&refs).unwrap();
        assert!(queries.len() > 1);
        assert!(queries
            .iter()
            .all(|q| q.len() <= MAX_SOQL && q.ends_with(')')));
        let listed: usize = queries
            .iter()
            .map(|q| q.matches("@example.com'").count())
            .sum();
        assert_eq!(listed, 2500);
    }

    #[test]
    fn the_active_query_carries_its_filters() {
        let t = time::macros::datetime!(2026-12-01 00:00 UTC);
        let q = active(Some(t), Some("o'neil@x.com")).unwrap();
        assert!(q.contains("Status = 'Active'"));
        assert!(q.contains("CreatedDate >= 2026-12-01T00:00:00Z"));
        assert!(q.contains(r"CreatedBy.Username = 'o\'neil@x.com'"));
    }
}
