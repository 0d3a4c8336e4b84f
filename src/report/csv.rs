//! The report as CSV (`--report x.csv`) and `failed.csv`, the next run's list. Every cell that a
//! spreadsheet would run as a formula is neutralized.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::Path;

use crate::input::Target;
use crate::store::{write_atomic, StoreError};

use super::{status_name, Formatter, Report};

pub struct Csv;

/// A cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, so a spreadsheet shows
/// it as text instead of running it (the list reader strips that `'` again).
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

fn writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::new())
}

#[expect(clippy::expect_used, reason = "writing CSV to memory cannot fail")]
fn row<'a>(w: &mut csv::Writer<Vec<u8>>, cells: impl IntoIterator<Item = &'a str>) {
    let cells: Vec<Cow<'_, str>> = cells.into_iter().map(neutralize).collect();
    w.write_record(cells.iter().map(|c| c.as_bytes()))
        .expect("writing to memory cannot fail");
}

#[expect(clippy::expect_used, reason = "flushing CSV to memory cannot fail")]
fn finish(w: csv::Writer<Vec<u8>>) -> Vec<u8> {
    w.into_inner().expect("flushing to memory cannot fail")
}

impl Formatter for Csv {
    #[expect(
        clippy::expect_used,
        reason = "every cell written was a str, so the bytes are UTF-8"
    )]
    fn format(&self, report: &Report) -> String {
        let mut w = writer();
        row(
            &mut w,
            [
                "username",
                "alias",
                "status",
                "attempts",
                "orgId",
                "userId",
                "instanceUrl",
                "tokenHost",
                "authFile",
                "elapsedMs",
                "replicationWaitMs",
                "errorKind",
                "errorCode",
                "errorDescription",
                "hint",
                "note",
            ]
            .into_iter()
            .chain(super::devhub::CSV_COLUMNS),
        );
        for o in &report.orgs {
            let kind = o
                .error
                .as_ref()
                .and_then(|e| serde_json::to_value(e.kind).ok())
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let auth_file = o
                .auth_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let (attempts, elapsed, wait) = (
                o.attempts.to_string(),
                o.elapsed_ms.to_string(),
                o.replication_wait_ms.to_string(),
            );
            let error = o.error.as_ref();
            row(
                &mut w,
                [
                    o.username.as_str(),
                    o.alias.as_deref().unwrap_or_default(),
                    status_name(o.status),
                    &attempts,
                    o.org_id.as_deref().unwrap_or_default(),
                    o.user_id.as_deref().unwrap_or_default(),
                    o.instance_url.as_deref().unwrap_or_default(),
                    o.token_host.as_deref().unwrap_or_default(),
                    &auth_file,
                    &elapsed,
                    &wait,
                    &kind,
                    error.map(|e| e.code.as_str()).unwrap_or_default(),
                    error.map(|e| e.description.as_str()).unwrap_or_default(),
                    error.and_then(|e| e.hint.as_deref()).unwrap_or_default(),
                    o.note.as_deref().unwrap_or_default(),
                ]
                .into_iter()
                .chain(super::devhub::csv_cells(o)),
            );
        }
        String::from_utf8(finish(w)).expect("every cell was a str")
    }
}

/// A list column that holds a secret by its name (`accessToken`, `sfdxAuthUrl`, `password`…,
/// in any case, with or without `_` or `-`).
fn is_secret_column(name: &str) -> bool {
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    matches!(
        name.as_str(),
        "accesstoken"
            | "refreshtoken"
            | "sfdxauthurl"
            | "authurl"
            | "sessionid"
            | "password"
            | "clientsecret"
            | "privatekey"
            | "token"
            | "secret"
    )
}

impl Report {
    /// `failed.csv`: the unfinished orgs with the input's own columns, ready to be the next
    /// run's list. Removed when every org is done, so a stale one never lingers.
    /// `targets` are the list's rows that were planned (in list order): every unfinished org
    /// is one of them.
    pub fn write_failed(
        &self,
        columns: &[String],
        targets: &[Target],
        path: &Path,
    ) -> Result<bool, StoreError> {
        let unfinished: HashSet<&str> = self.unfinished().map(|o| o.username.as_str()).collect();
        if unfinished.is_empty() {
            let _ = std::fs::remove_file(path);
            return Ok(false);
        }
        // A list may carry secrets beside the usernames (an access token, an sfdx auth URL):
        // failed.csv, which CI recipes upload, leaves those columns out.
        let keep: Vec<bool> = columns.iter().map(|c| !is_secret_column(c)).collect();
        fn kept<'a>(cells: &'a [String], keep: &[bool]) -> Vec<&'a str> {
            cells
                .iter()
                .zip(keep.iter().chain(std::iter::repeat(&true)))
                .filter(|(_, k)| **k)
                .map(|(c, _)| c.as_str())
                .collect()
        }
        let mut w = writer();
        row(&mut w, kept(columns, &keep));
        let mut written = HashSet::new();
        for t in targets {
            if unfinished.contains(t.username.as_str()) && written.insert(t.username.to_lowercase())
            {
                row(&mut w, kept(&t.record, &keep));
            }
        }
        write_atomic(path, &finish(w), 0o600)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn secret_columns_are_named_in_any_spelling_and_others_are_not() {
        for c in [
            "accessToken",
            "access_token",
            "SFDX_AUTH_URL",
            "sfdxAuthUrl",
            "Password",
        ] {
            assert!(is_secret_column(c), "{c}");
        }
        for c in ["username", "alias", "instanceUrl", "orgId", "tokenHost"] {
            assert!(!is_secret_column(c), "{c}");
        }
    }

    #[test]
    fn formula_cells_are_neutralized_and_others_kept() {
        for cell in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(neutralize(cell), format!("'{cell}"));
        }
        for cell in ["a@x.com", "", "'already", "1-2"] {
            assert_eq!(neutralize(cell), cell);
        }
    }

    #[test]
    fn the_csv_report_has_no_live_formula() {
        let text = Csv.format(&sample::report());
        let mut r = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let cells: Vec<String> = r
            .records()
            .flat_map(|rec| rec.unwrap().iter().map(String::from).collect::<Vec<_>>())
            .collect();
        assert!(cells.contains(&"'=cmd@x.com".to_string()), "{text}");
        assert!(cells.contains(&"'+1".to_string()), "{text}");
        assert!(
            cells
                .iter()
                .all(|c| !c.starts_with(['=', '+', '-', '@', '\t', '\r'])),
            "{text}"
        );
    }

    #[test]
    fn failed_csv_keeps_the_input_columns_and_neutralizes_them() {
        let list = crate::input::parse(
            "l.csv",
            "username,alias,note\nok@x.com,s1,fine\nbad@x.com,s2,=HYPERLINK(\"x\")\n",
            crate::input::Format::Csv,
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("failed.csv");
        assert!(sample::report()
            .write_failed(&list.columns, &list.targets, &path)
            .unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "username,alias,note\nbad@x.com,s2,\"'=HYPERLINK(\"\"x\"\")\"\n"
        );
        // ...and reads back as it was written: failed.csv is the next run's list.
        let again = crate::input::parse("failed.csv", &text, crate::input::Format::Csv).unwrap();
        assert_eq!(again.targets[0].record, list.targets[1].record);
    }
}
