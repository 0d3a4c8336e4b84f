//! The run as JUnit XML (`--junit PATH`), which GitLab (`artifacts:reports:junit`) and GitHub
//! test reporters render: one `<testcase>` per org, a `<failure>` with the error and its fix for
//! a failed org, `<skipped>` for a skipped or pending one.

use std::fmt::Write as _;

use crate::fleet::Status;

use super::{Formatter, OrgReport, Report};

pub struct JUnit;

/// `text` escaped for XML content or a double-quoted attribute. Characters XML 1.0 cannot hold
/// (most control characters) become U+FFFD; in attributes, line breaks and tabs are kept as
/// character references, since parsers would fold them into spaces.
fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\n' | '\r' | '\t' if attribute => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            '\n' | '\r' | '\t' => out.push(c),
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c if c < ' ' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn attr(text: &str) -> String {
    escape(text, true)
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

impl Formatter for JUnit {
    fn format(&self, report: &Report) -> String {
        let s = &report.summary;
        let skipped = s.skipped + s.pending;
        let timestamp = super::timestamp::format(s.started_at);
        let counts = format!(
            "tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{}\"",
            s.total,
            s.failed,
            secs(s.elapsed_ms)
        );
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        // junit-10.xsd allows `skipped` on a testsuite only (fixtures/schema/junit-10.xsd).
        let _ = writeln!(out, "<testsuites name=\"fleetauth\" {counts}>");
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" {counts} skipped=\"{skipped}\" timestamp=\"{timestamp}\">",
            attr(&format!("fleetauth grant {}", s.list))
        );
        out.push_str(&super::devhub::junit_suite_properties(report, attr));
        for org in &report.orgs {
            testcase(org, &s.list, &mut out);
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

fn testcase(o: &OrgReport, list: &str, out: &mut String) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        attr(&o.username),
        attr(o.alias.as_deref().unwrap_or(list)),
        secs(o.elapsed_ms)
    );
    // The hub's view of the org, as properties (JUnit allows them in a testcase).
    let properties = super::devhub::junit_properties(o, attr);
    let inner = properties.as_deref().unwrap_or_default();
    match (o.status, &o.error) {
        (Status::Authorized, _) if properties.is_some() => {
            let _ = writeln!(out, ">\n{inner}    </testcase>");
        }
        (Status::Authorized, _) => out.push_str("/>\n"),
        (Status::Failed, Some(e)) => {
            let mut body = e.description.clone();
            if let Some(hint) = &e.hint {
                body.push_str("\nfix: ");
                body.push_str(hint);
            }
            let _ = writeln!(
                out,
                ">\n{inner}      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                attr(&format!("{}: {}", e.code, e.description)),
                attr(&e.code),
                escape(&body, false)
            );
        }
        (Status::Failed, None) => {
            let _ = writeln!(
                out,
                ">\n      <failure message=\"failed\"/>\n    </testcase>"
            );
        }
        (Status::Pending, _) => {
            let _ = writeln!(
                out,
                ">\n      <skipped message=\"pending: not finished (interrupted); re-run the same command\"/>\n    </testcase>"
            );
        }
        (Status::Skipped, _) => {
            let note = o.note.as_deref().unwrap_or("skipped");
            let _ = writeln!(
                out,
                ">\n{inner}      <skipped message=\"{}\"/>\n    </testcase>",
                attr(note)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn well_formed_with_one_testcase_per_org() {
        let xml = JUnit.format(&sample::report());
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases.len(), 5);
        let bad = cases
            .iter()
            .find(|n| n.attribute("name") == Some("bad@x.com"))
            .unwrap();
        assert_eq!(bad.attribute("classname"), Some("orgs.csv"));
        assert_eq!(bad.attribute("time"), Some("1.234"));
        let failure = bad.children().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!(failure.attribute("type"), Some("invalid_client_id"));
        assert_eq!(
            failure.text(),
            Some(
                "client identifier <invalid> & \"odd\"\nfix: the consumer key is wrong | check it"
            )
        );
        let skipped = cases
            .iter()
            .filter(|n| n.children().any(|c| c.has_tag_name("skipped")))
            .count();
        assert_eq!(skipped, 2, "pending and skipped");
        let ok = cases
            .iter()
            .find(|n| n.attribute("name") == Some("ok@x.com"))
            .unwrap();
        assert_eq!(
            ok.attribute("classname"),
            Some("s1"),
            "the alias when there is one"
        );
    }

    #[test]
    fn control_characters_and_quotes_stay_well_formed() {
        let mut report = sample::report();
        report.orgs[2].error.as_mut().unwrap().description = "a\u{1}b\u{FFFF}\"'\n\tc]]>".into();
        report.summary.list = "we\"ird<list>.csv".into();
        let xml = JUnit.format(&report);
        let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("invalid_client_id: a\u{FFFD}b\u{FFFD}\"'\n\tc]]>")
        );
    }
}
