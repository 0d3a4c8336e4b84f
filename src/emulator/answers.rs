//! The token endpoint's answers as Salesforce sends them, kept as files in
//! `fixtures/answers/<class>/<name>.http` (status line, headers, blank line, body). The
//! emulator serves its pages from them, and the classifier's table test reads every one, so
//! neither can drift from the files alone.

/// One recorded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawAnswer {
    /// Parse `"<status> <reason>\nName: value\n…\n\n<body>"`.
    pub fn parse(text: &str) -> Option<Self> {
        let (head, body) = text.split_once("\n\n")?;
        let mut lines = head.lines();
        let status = lines.next()?.split_whitespace().next()?.parse().ok()?;
        let headers = lines
            .map(|l| {
                let (name, value) = l.split_once(':')?;
                Some((name.trim().to_string(), value.trim().to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            status,
            headers,
            body: body.to_string(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The maintenance page of a 503.
pub const MAINTENANCE: &str = include_str!("../../fixtures/answers/transient/maintenance-503.http");
/// The page of a 420 (org not ready, in maintenance or expired).
pub const NOT_READY: &str = include_str!("../../fixtures/answers/transient/not-ready-420.http");
/// A success answer cut short.
pub const TRUNCATED: &str = include_str!("../../fixtures/answers/transient/truncated-200.http");
/// A 504 after a slow upstream.
pub const GATEWAY_TIMEOUT: &str =
    include_str!("../../fixtures/answers/transient/gateway-timeout-504.http");

/// The body of a recorded answer.
pub fn body(recorded: &'static str) -> &'static str {
    recorded.split_once("\n\n").map_or("", |(_, b)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_answers_parse() {
        let a = RawAnswer::parse(MAINTENANCE).unwrap();
        assert_eq!(a.status, 503);
        assert_eq!(a.header("content-type"), Some("text/html"));
        assert!(a.body.contains("down for maintenance"));
        assert_eq!(body(NOT_READY), RawAnswer::parse(NOT_READY).unwrap().body);
    }
}
