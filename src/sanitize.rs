//! Text that came from a server (an error description, an HTML title, a transport error) made
//! safe to print and to store: anything shaped like a token or a JWT is cut out, credentials in
//! URLs are hidden, control characters (ANSI escapes included) are escaped, whitespace is
//! collapsed and the length is capped. Nothing a server sends reaches a terminal or a report
//! without passing through [`excerpt`].

/// The longest excerpt of server text kept in a report.
pub const MAX_EXCERPT: usize = 200;

const REDACTED: &str = "[redacted]";

/// The characters a Salesforce session id (`<org id>!<session>`), a JWT or a base64 secret is
/// made of. One definition: [`crate::token`] accepts an access token only of these, and the
/// excerpt cuts out every run of them that could be a secret, so a token the server echoes is
/// redacted whole whatever it holds.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '.' | '_' | '~' | '+' | '=' | '-' | '/')
}

/// A run of token characters that could be (part of) a secret: a Salesforce session id
/// (`<org id>!<...>`), or anything long enough to be a key, a token or a JWT segment.
fn token_shaped(run: &str) -> bool {
    (run.contains('!') && run.len() >= 12)
        || run.len() >= 32
        // A JWT segment (`{"` in base64url), however short.
        || (run.starts_with("eyJ") && run.len() >= 8)
}

/// Push `run` to `out`, or [`REDACTED`] in place of any secret in it. A run that starts with
/// `//` is the rest of a URL (`https:` ended the run before it): its host and the path up to
/// the first secret-shaped segment stay readable, everything from that segment on is cut, so
/// a token in a path loses every piece, not only the one before its first `/`.
fn push_run(run: &str, out: &mut String) {
    if let Some(rest) = run.strip_prefix("//") {
        out.push_str("//");
        let mut first = true;
        let mut segments = rest.split('/');
        for segment in segments.by_ref() {
            if token_shaped(segment) {
                if !first {
                    out.push('/');
                }
                out.push_str(REDACTED);
                return;
            }
            if !first {
                out.push('/');
            }
            out.push_str(segment);
            first = false;
        }
    } else if token_shaped(run) {
        out.push_str(REDACTED);
    } else {
        out.push_str(run);
    }
}

/// Server text, cleaned and cut to at most `max` characters.
pub fn excerpt(text: &str, max: usize) -> String {
    // Only the start of a huge text is looked at: the excerpt is short anyway.
    let mut end = text.len().min(64 * 1024);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = hide_url_credentials(&text[..end]);
    let mut out = String::with_capacity(text.len().min(max * 2));
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        push_run(run, out);
        run.clear();
    };
    for c in text.chars() {
        if out.len() > 4 * (max + REDACTED.len()) {
            break;
        }
        if is_token_char(c) {
            run.push(c);
            // A run longer than any legitimate word is a secret, however long it goes on.
            if run.len() > 4096 {
                run.truncate(64);
            }
            continue;
        }
        flush(&mut run, &mut out);
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            continue;
        }
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    let trimmed = out.trim();
    if trimmed.chars().count() > max {
        let cut: String = trimmed.chars().take(max).collect();
        format!("{}…", cut.trim_end())
    } else {
        trimmed.to_string()
    }
}

/// Text from the user's own data (a list's URL, an alias) made safe to print: control and
/// bidi characters escaped, cut to `max` characters; nothing is redacted.
pub fn shown(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() || is_bidi_control(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// What stands for key material in a message.
const KEY_TEXT: &str = "[key text, not shown]";

/// A message about the user's own settings (a setup error, a clap usage error) without any key
/// material pasted where a path or a name was expected: a PEM block, or a run of base64 long
/// and mixed enough to be one (`-f "$(base64 -w0 server.key)"`). The rest stays as written.
pub fn without_key_material(message: &str) -> std::borrow::Cow<'_, str> {
    let pem = message.find("-----BEGIN");
    let looks_base64 = |run: &str| {
        run.len() >= 60
            && run.split('/').any(|piece| {
                piece.len() >= 20
                    && piece.bytes().any(|b| b.is_ascii_uppercase())
                    && piece.bytes().any(|b| b.is_ascii_lowercase())
                    && piece.bytes().any(|b| b.is_ascii_digit())
            })
    };
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    let has_run = message.split(|c: char| !is_b64(c)).any(&looks_base64);
    if pem.is_none() && !has_run {
        return std::borrow::Cow::Borrowed(message);
    }
    // A PEM block, from its BEGIN line to its END line (or the end of the message).
    let mut text = message.to_string();
    while let Some(start) = text.find("-----BEGIN") {
        let end = text[start..]
            .find("-----END")
            .and_then(|e| {
                let after = start + e + "-----END".len();
                text[after..]
                    .find("-----")
                    .map(|close| after + close + "-----".len())
            })
            .unwrap_or(text.len());
        text.replace_range(start..end, KEY_TEXT);
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if is_b64(c) {
            run.push(c);
            continue;
        }
        if looks_base64(&run) {
            out.push_str(KEY_TEXT);
        } else {
            out.push_str(&run);
        }
        run.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Unicode controls that reorder text on a terminal (Trojan Source): every `Bidi_Control`
/// character (the Arabic letter mark, the left-to-right and right-to-left marks, the
/// embeddings, overrides and isolates).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// `scheme://user:password@host` → `scheme://[redacted]@host`, wherever it appears.
pub fn hide_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// The `<title>` of an HTML page, if it has one.
pub fn html_title(body: &str) -> Option<&str> {
    let lower = body.get(..body.len().min(64 * 1024))?.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = lower[start..].find('>')? + start + 1;
    let close = lower[open_end..].find("</title")? + open_end;
    let title = body.get(open_end..close)?.trim();
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_text_pasted_for_a_path_is_not_shown() {
        let key = include_str!("../fixtures/keys/server.key");
        let pem = format!("cannot read the key file {key}: No such file or directory");
        let shown = without_key_material(&pem);
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
            "{shown}"
        );
        assert!(
            shown.starts_with("cannot read the key file [key text, not shown]"),
            "{shown}"
        );
        assert!(shown.ends_with(": No such file or directory"), "{shown}");
        let b64: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        let message = format!("cannot read the key file {b64}: No such file or directory");
        let shown = without_key_material(&message);
        assert!(!shown.contains(&b64[..20]), "{shown}");
        // A cut PEM (no END line) goes whole.
        let cut = format!("unexpected argument '{}'", &key[..200]);
        assert_eq!(
            without_key_material(&cut),
            "unexpected argument '[key text, not shown]"
        );
    }

    #[test]
    fn ordinary_messages_and_paths_are_left_alone() {
        for m in [
            "cannot read the key file /home/runner/work/MyProject2024/MyProject2024/keys/server.key: No such file",
            "--instance-url: https://acme--uat.sandbox.my.salesforce.com is not a token host",
            "no consumer key: pass --client-id (-i) or set SFDX_CLIENT_ID",
            "alias ci-3 names test-abc123@example.com",
        ] {
            assert_eq!(without_key_material(m), m);
        }
    }

    use super::*;

    const TOKEN: &str = "00D5g000000ABCD!AQ0AQHyW7k3r0RrV2G5mKq_Xz.9Lp8Hd4Ts1Ue6Wb3Nc";

    #[test]
    fn tokens_and_jwts_are_cut_out() {
        let e = excerpt(&format!("{{\"access_token\":\"{TOKEN}\",\"inst"), 200);
        assert!(!e.contains("AQ0AQ"), "{e}");
        assert!(e.contains(REDACTED), "{e}");
        let jwt =
            "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIzTVZHOSIsInN1YiI6ImEifQ.c2lnbmF0dXJlc2lnbmF0dXJl";
        assert!(!excerpt(&format!("bad assertion {jwt}"), 200).contains("eyJ"));
        assert!(!excerpt("header eyJhbGciOiJSUzI1NiJ9 alone", 200).contains("eyJ"));
        // A short session id is still one.
        assert!(!excerpt("x 00Dxx0000001gPL!AR8 y", 200).contains("AR8"));
        // Ordinary words and host names survive.
        assert_eq!(
            excerpt("user hasn't approved this consumer", 200),
            "user hasn't approved this consumer"
        );
        assert_eq!(
            excerpt("connect to test.salesforce.com:443 refused", 200),
            "connect to test.salesforce.com:443 refused"
        );
    }

    #[test]
    fn a_token_holding_slashes_is_cut_out_whole_even_inside_a_url() {
        let token = "00D5g000000ABCD!AQ0AQSlashOne/SlashTwoPart~Third+Fourth=/Fifth.Sixth";
        for text in [
            format!("bad {token} here"),
            format!("see https://h.example/x?sid={token}"),
            format!("see https://h.example/id/{token}/x"),
            format!("<title>{token}</title>"),
        ] {
            let e = excerpt(&text, 200);
            for piece in [
                "AQ0AQ",
                "SlashOne",
                "SlashTwoPart",
                "Third",
                "Fourth",
                "Fifth",
            ] {
                assert!(!e.contains(piece), "{piece} in {e:?}");
            }
            assert!(e.contains(REDACTED), "{e}");
        }
        // A URL without a secret in it stays readable.
        assert_eq!(
            excerpt(
                "error sending request for url (https://test.salesforce.com/services/oauth2/token)",
                200
            ),
            "error sending request for url (https://test.salesforce.com/services/oauth2/token)"
        );
        assert_eq!(
            excerpt("see https://h.example/id/00D5g000000ABCD!AQ0AQSlash/x", 200),
            "see https://h.example/id/[redacted]"
        );
    }

    #[test]
    fn every_bidi_control_is_one() {
        for c in [
            '\u{061c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202c}', '\u{202e}', '\u{2066}',
            '\u{2069}',
        ] {
            assert!(is_bidi_control(c), "{:?}", c);
            let e = excerpt(&format!("a{c}b"), 200);
            assert!(!e.contains(c) && e.contains("\\u{"), "{e:?}");
            assert!(!shown(&format!("a{c}b"), 20).contains(c));
        }
        for c in ['a', '\u{2065}', '\u{202f}', '\u{061b}'] {
            assert!(!is_bidi_control(c), "{:?}", c);
        }
    }

    #[test]
    fn control_characters_are_escaped_and_whitespace_collapsed() {
        let e = excerpt("red \x1b[31mALERT\x1b[0m\r\n\tnext \u{202e}rev", 200);
        assert!(!e.contains('\x1b') && !e.contains('\r') && !e.contains('\u{202e}'));
        assert!(e.contains("\\u{1b}[31mALERT"), "{e}");
        assert!(e.contains("ALERT\\u{1b}[0m next"), "{e}");
    }

    #[test]
    fn length_is_capped_however_long_the_text() {
        let huge = "word ".repeat(50_000_000 / 5);
        let e = excerpt(&huge, MAX_EXCERPT);
        assert!(e.chars().count() <= MAX_EXCERPT + 1, "{}", e.len());
        assert!(e.ends_with('…'));
        let blob = "A".repeat(1_000_000);
        assert_eq!(excerpt(&blob, MAX_EXCERPT), REDACTED);
    }

    #[test]
    fn shown_escapes_without_redacting() {
        assert_eq!(
            shown("https://acme-dev-ed.scratch.my.salesforce.com", 100),
            "https://acme-dev-ed.scratch.my.salesforce.com"
        );
        assert_eq!(shown("a\x1b[2Jb\u{202e}", 100), "a\\u{1b}[2Jb\\u{202e}");
        assert_eq!(shown("abcdef", 3), "abc…");
    }

    #[test]
    fn credentials_in_urls_are_hidden() {
        assert_eq!(
            hide_url_credentials("via http://bob:s3cret@proxy.corp:3128/ failed"),
            "via http://[redacted]@proxy.corp:3128/ failed"
        );
        assert_eq!(
            hide_url_credentials("https://test.salesforce.com/x?a=b@c"),
            "https://test.salesforce.com/x?a=b@c"
        );
        assert!(!excerpt("proxy http://u:pw@p:1 down", 200).contains("pw"));
    }

    #[test]
    fn html_titles_are_found() {
        assert_eq!(
            html_title("<html><head><TITLE> Not Found </TITLE></head>"),
            Some("Not Found")
        );
        assert_eq!(html_title("<html>no title</html>"), None);
    }
}
