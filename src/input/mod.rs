//! Stage 1: read the org list (CSV, JSON or the Salesforce CLI's `--json` outputs) into
//! [`Target`]s. Every row is checked here, before anything is sent: a bad row is reported with
//! its file and line, and the whole list is rejected.
//!
//! This file holds the types and the reading of a file; [`csv`] and [`json`] turn its text into
//! rows, and [`validate`] checks each row before the list is handed on.

mod csv;
mod json;
mod merge;
mod validate;

pub use merge::read_all;
pub use validate::{check_alias, check_hosts, check_username};

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// One org to authorize, as the list gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub username: String,
    pub alias: Option<String>,
    /// The org's own token host, tried before `--instance-url`.
    pub instance_url: Option<String>,
    pub origin: Origin,
    /// The row's cells, in the order of [`OrgList::columns`]; used to write `failed.csv`.
    pub record: Vec<String>,
    /// The org's place among the list's orgs, from 1 (repeats not counted, every shard
    /// counted): what `--alias-prefix P` names it, `P<place>`, in every run of the list. Set
    /// by the plan; 0 before.
    pub place: usize,
}

/// Where a row came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Line(u64),
    Entry(usize),
    /// A row of one of several lists read together: that list's name, then the row's place in
    /// it (a `Line` or an `Entry`).
    In(Arc<str>, Box<Origin>),
}

impl Origin {
    /// The row's place as a message names it: `orgs.csv:line 3`. A row of one of several lists
    /// names its own file; `source` is the list's name otherwise.
    pub fn at(&self, source: &str) -> String {
        match self {
            Origin::In(..) => self.to_string(),
            _ => format!("{source}:{self}"),
        }
    }

    /// Where the row sorts among a list's rows: by file (of several), then place in it.
    pub fn rank(&self) -> (Option<&str>, u64) {
        match self {
            Origin::Line(n) => (None, *n),
            Origin::Entry(n) => (None, *n as u64),
            Origin::In(list, inner) => (Some(list), inner.rank().1),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Entry(n) => write!(f, "entry {n}"),
            Origin::In(list, inner) => write!(f, "{list}:{inner}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrgList {
    /// The file name as the user gave it (`-` shows as `<stdin>`).
    pub source: String,
    pub columns: Vec<String>,
    pub targets: Vec<Target>,
    /// Entries left out on purpose (a Dev Hub in `sf org list --json`), and why.
    pub excluded: Vec<(Target, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read the org list {source_name}: {error}")]
    Io {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name} is not valid {format}: {message}")]
    Syntax {
        source_name: String,
        format: &'static str,
        message: String,
    },
    #[error("{source_name} has no username column (found: {found}); name it `username`, `SignupUsername` or `signup_username`")]
    NoUsernameColumn { source_name: String, found: String },
    #[error("{source_name}: {shape}; expected an array of usernames or objects, or the --json output of `sf org list`, `sf data query` or `sf org create scratch`")]
    UnknownShape {
        source_name: String,
        shape: &'static str,
    },
    #[error("{source_name} is larger than {} MiB, the most fleetauth reads as one list; split it (e.g. `split -l 100000 orgs.csv part-`) and run one grant per part", MAX_LIST_BYTES / 1024 / 1024)]
    TooLarge { source_name: String },
    #[error("{source_name} lists no orgs; give at least one username")]
    Empty { source_name: String },
    #[error("`-` (standard input) is given as more than one list; stdin can be read once: save the other list to a file")]
    StdinTwice,
    #[error("{source_name}: {} row(s) rejected, nothing was sent:\n{}", rows.len(), rows.iter().map(|(o, m)| format!("  {}: {m}", o.at(source_name))).collect::<Vec<_>>().join("\n"))]
    Rejected {
        source_name: String,
        rows: Vec<(Origin, String)>,
    },
}

/// Read an org list from a path, or standard input for `-`.
pub fn read(path: &Path, format: Option<Format>) -> Result<OrgList, InputError> {
    let stdin = path.as_os_str() == "-";
    let source_name = if stdin {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let io = |error| InputError::Io {
        source_name: source_name.clone(),
        error,
    };
    let too_large = || InputError::TooLarge {
        source_name: source_name.clone(),
    };
    let text = if stdin {
        read_capped(std::io::stdin().lock()).map_err(io)?
    } else {
        let file = std::fs::File::open(path).map_err(io)?;
        // A regular file says its size: refused before a byte is read.
        if file
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() > MAX_LIST_BYTES)
        {
            return Err(too_large());
        }
        read_capped(file).map_err(io)?
    };
    let Some(text) = text else {
        return Err(too_large());
    };
    let format = format.unwrap_or_else(|| detect(path, &text));
    parse(&source_name, &text, format)
}

/// The largest org list read: a list is held whole while every row is checked (and a JSON
/// list is parsed into a tree several times its size), so a larger one is refused rather than
/// read until memory runs out. 64 MiB is over a million CSV rows.
pub const MAX_LIST_BYTES: u64 = 64 * 1024 * 1024;

/// All of `reader` as text; `None` when it holds more than [`MAX_LIST_BYTES`].
fn read_capped(reader: impl Read) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    reader.take(MAX_LIST_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Ok(None);
    }
    String::from_utf8(bytes).map(Some).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// The format from the file extension (`.json`, `.csv`), else from the first non-blank
/// character: a `.txt` file holding JSON is read as JSON.
fn detect(path: &Path, text: &str) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    {
        Some(e) if e == "json" => Format::Json,
        Some(e) if e == "csv" => Format::Csv,
        _ if looks_like_json(text) => Format::Json,
        _ => Format::Csv,
    }
}

/// Whether a list's text opens like JSON: no CSV list of usernames starts with `[` or `{`.
fn looks_like_json(text: &str) -> bool {
    matches!(
        text.trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next(),
        Some('[' | '{')
    )
}

pub fn parse(source_name: &str, text: &str, format: Format) -> Result<OrgList, InputError> {
    // A byte-order mark (Excel, PowerShell) is not part of the list, whatever its format.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let list = match format {
        Format::Csv if looks_like_json(text) => {
            return Err(InputError::Syntax {
                source_name: source_name.to_string(),
                format: "CSV",
                message: "it holds JSON; pass --format json (or name the file .json)".into(),
            })
        }
        Format::Csv => csv::parse(source_name, text)?,
        Format::Json => json::parse(source_name, text)?,
    };
    let mut rows: Vec<(Origin, String)> = list
        .targets
        .iter()
        .filter_map(validate::check_target)
        .collect();
    rows.extend(validate::duplicate_aliases(&list.targets));
    rows.sort_by(|(a, _), (b, _)| a.rank().cmp(&b.rank()));
    if !rows.is_empty() {
        return Err(InputError::Rejected {
            source_name: source_name.to_string(),
            rows,
        });
    }
    if list.targets.is_empty() {
        return Err(InputError::Empty {
            source_name: source_name.to_string(),
        });
    }
    Ok(list)
}

/// The columns fleetauth reads from a list; any other column is carried along as it is.
#[derive(Clone, Copy)]
enum Column {
    Username,
    Alias,
    InstanceUrl,
}

impl Column {
    /// The names (lower case) a CSV header or a JSON key may give the column.
    fn names(self) -> &'static [&'static str] {
        match self {
            Column::Username => &["username", "signupusername", "signup_username"],
            Column::Alias => &["alias"],
            Column::InstanceUrl => &["instanceurl", "instance_url", "loginurl"],
        }
    }
}

fn column_of(name: &str) -> Option<Column> {
    let name = name.trim().to_ascii_lowercase();
    [Column::Username, Column::Alias, Column::InstanceUrl]
        .into_iter()
        .find(|c| c.names().contains(&name.as_str()))
}

fn non_blank(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usernames(list: &OrgList) -> Vec<&str> {
        list.targets.iter().map(|t| t.username.as_str()).collect()
    }

    #[test]
    fn headerless_csv_is_one_username_per_line_skipping_blanks_and_comments() {
        let list = parse("l.csv", "# fleet\na@x.com\n\n   \nb@x.com\n", Format::Csv).unwrap();
        assert_eq!(usernames(&list), ["a@x.com", "b@x.com"]);
        assert_eq!(list.targets[1].origin, Origin::Line(5));
    }

    #[test]
    fn csv_header_names_are_matched_in_any_case() {
        let text =
            "SIGNUPUSERNAME,Alias,LoginUrl,extra\na@x.com,one,https://a.my.salesforce.com,z\n";
        let list = parse("l.csv", text, Format::Csv).unwrap();
        let t = &list.targets[0];
        assert_eq!(t.username, "a@x.com");
        assert_eq!(t.alias.as_deref(), Some("one"));
        assert_eq!(
            t.instance_url.as_deref(),
            Some("https://a.my.salesforce.com")
        );
        assert_eq!(
            list.columns,
            ["SIGNUPUSERNAME", "Alias", "LoginUrl", "extra"]
        );
        assert_eq!(
            t.record,
            ["a@x.com", "one", "https://a.my.salesforce.com", "z"]
        );
    }

    #[test]
    fn csv_header_without_username_column_is_an_error() {
        let err = parse("l.csv", "alias,email\nx,y\n", Format::Csv).unwrap_err();
        assert!(matches!(err, InputError::NoUsernameColumn { .. }), "{err}");
    }

    #[test]
    fn bad_usernames_are_rejected_with_file_and_line() {
        let err = parse(
            "l.csv",
            "a@x.com\n../../etc@x.com\nnot-a-user\n",
            Format::Csv,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("l.csv:line 2"), "{err}");
        assert!(err.contains("l.csv:line 3"), "{err}");
        assert!(err.contains("local@domain"), "{err}");
    }

    #[test]
    fn non_loopback_http_instance_url_is_rejected() {
        let err = parse(
            "l.csv",
            "username,instanceUrl\na@x.com,http://evil.example.com\n",
            Format::Csv,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 2") && err.contains("https://"), "{err}");
    }

    #[test]
    fn empty_lists_are_errors() {
        assert!(matches!(
            parse("l.csv", "# nothing\n\n", Format::Csv),
            Err(InputError::Empty { .. })
        ));
        assert!(matches!(
            parse("l.csv", "username\n", Format::Csv),
            Err(InputError::Empty { .. })
        ));
        assert!(matches!(
            parse("l.json", "[]", Format::Json),
            Err(InputError::Empty { .. })
        ));
    }

    #[test]
    fn json_shapes() {
        let strings = parse("l.json", r#"["a@x.com","b@x.com"]"#, Format::Json).unwrap();
        assert_eq!(
            detect(Path::new("orgs.txt"), "\n  [\"a@x.com\"]"),
            Format::Json,
            "a .txt file holding JSON is read as JSON"
        );
        let err = parse("orgs.csv", r#"["a@x.com"]"#, Format::Csv).unwrap_err();
        assert!(err.to_string().contains("--format json"), "{err}");
        assert_eq!(usernames(&strings), ["a@x.com", "b@x.com"]);
        let objects = parse(
            "l.json",
            r#"[{"SignupUsername":"a@x.com","LoginUrl":"https://a.my.salesforce.com","alias":"s1"}]"#,
            Format::Json,
        )
        .unwrap();
        assert_eq!(objects.targets[0].alias.as_deref(), Some("s1"));
        let query = r#"{"status":0,"result":{"records":[{"attributes":{},"SignupUsername":"q@x.com"}],"totalSize":1}}"#;
        assert_eq!(
            usernames(&parse("q.json", query, Format::Json).unwrap()),
            ["q@x.com"]
        );
        let list = r#"{"status":0,"result":{"nonScratchOrgs":[],"scratchOrgs":[{"username":"s@x.com","alias":"x","instanceUrl":"https://s.scratch.my.salesforce.com"}]}}"#;
        assert_eq!(
            usernames(&parse("o.json", list, Format::Json).unwrap()),
            ["s@x.com"]
        );
        let create = r#"{"status":0,"result":{"username":"c@x.com","orgId":"00D","authFields":{"instanceUrl":"https://c.scratch.my.salesforce.com"}}}"#;
        let created = parse("c.json", create, Format::Json).unwrap();
        assert_eq!(
            created.targets[0].instance_url.as_deref(),
            Some("https://c.scratch.my.salesforce.com")
        );
    }

    #[test]
    fn a_fleetauth_report_is_an_org_list() {
        let report = r#"{"summary":{"total":2},"orgs":[
            {"username":"a@x.com","alias":"s1","status":"authorized","orgId":"00D","instanceUrl":"https://a.scratch.my.salesforce.com","tokenHost":"https://test.salesforce.com"},
            {"username":"b@x.com","alias":null,"status":"failed","orgId":null,"instanceUrl":null}]}"#;
        for text in [
            report.to_string(),
            format!(r#"{{"status":1,"result":{report},"warnings":[]}}"#),
        ] {
            let list = parse("report.json", &text, Format::Json).unwrap();
            assert_eq!(usernames(&list), ["a@x.com", "b@x.com"]);
            let a = &list.targets[0];
            assert_eq!(a.alias.as_deref(), Some("s1"));
            assert_eq!(
                a.instance_url.as_deref(),
                Some("https://a.scratch.my.salesforce.com")
            );
            assert_eq!(
                (
                    list.targets[1].alias.as_ref(),
                    list.targets[1].instance_url.as_ref()
                ),
                (None, None)
            );
        }
    }

    #[test]
    fn json_errors_are_clear() {
        assert!(matches!(
            parse("l.json", "[1,", Format::Json),
            Err(InputError::Syntax { .. })
        ));
        assert!(matches!(
            parse("l.json", "42", Format::Json),
            Err(InputError::UnknownShape { .. })
        ));
        assert!(matches!(
            parse("l.json", "[42]", Format::Json),
            Err(InputError::UnknownShape { .. })
        ));
        let err = parse("l.json", r#"["a@x.com", "nope"]"#, Format::Json)
            .unwrap_err()
            .to_string();
        assert!(err.contains("l.json:entry 2"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics_either_reader(text in "\\PC{0,400}") {
            for format in [Format::Csv, Format::Json] {
                if let Err(e) = parse("fuzz", &text, format) {
                    proptest::prop_assert!(!e.to_string().is_empty());
                }
            }
        }

        #[test]
        fn every_accepted_username_is_a_plain_file_name(lines in proptest::collection::vec("[a-z./@\\\\ -]{0,20}", 1..10)) {
            if let Ok(list) = parse("fuzz.csv", &lines.join("\n"), Format::Csv) {
                for t in list.targets {
                    let path = std::path::Path::new("/out").join(format!("{}.json", t.username));
                    proptest::prop_assert_eq!(path.parent(), Some(std::path::Path::new("/out")));
                    proptest::prop_assert!(!t.username.starts_with('.'));
                }
            }
        }

        #[test]
        fn every_username_written_is_read_back_and_case_folded_repeats_collapse_once(
            names in proptest::collection::vec("[a-z][a-z0-9._+-]{0,10}@[a-z]{1,8}\\.(com|org|io)", 1..30),
            upper in proptest::collection::vec(proptest::bool::ANY, 30),
            as_json in proptest::bool::ANY,
        ) {
            // Some names repeated in another case.
            let mut written: Vec<String> = names.clone();
            for (i, name) in names.iter().enumerate() {
                if upper[i] {
                    written.push(name.to_uppercase());
                }
            }
            let (text, format) = if as_json {
                (serde_json::to_string(&written).unwrap(), Format::Json)
            } else {
                (written.join("\n") + "\n", Format::Csv)
            };
            let list = parse("prop", &text, format).unwrap();
            let read: Vec<&str> = list.targets.iter().map(|t| t.username.as_str()).collect();
            proptest::prop_assert_eq!(&read, &written.iter().map(String::as_str).collect::<Vec<_>>());
            let plan = crate::plan::plan(&list, None, |_| None);
            let mut distinct: Vec<String> = Vec::new();
            for w in &written {
                if !distinct.iter().any(|d| d.eq_ignore_ascii_case(w)) {
                    distinct.push(w.clone());
                }
            }
            let granted: Vec<&str> = plan.grant.iter().map(|t| t.username.as_str()).collect();
            proptest::prop_assert_eq!(granted, distinct.iter().map(String::as_str).collect::<Vec<_>>());
            proptest::prop_assert_eq!(plan.duplicates.len(), written.len() - distinct.len());
        }

        #[test]
        fn json_shaped_input_never_panics(entries in proptest::collection::vec("(\"[a-z@.]{0,12}\"|null|1|\\{\\}|\\[\\])", 0..8)) {
            let text = format!("[{}]", entries.join(","));
            let _ = parse("fuzz.json", &text, Format::Json);
        }
    }

    #[test]
    fn format_is_detected_from_extension_then_content() {
        assert_eq!(detect(Path::new("x.json"), "a@x.com"), Format::Json);
        assert_eq!(detect(Path::new("x.csv"), "[]"), Format::Csv);
        assert_eq!(detect(Path::new("-"), "  [\"a@x.com\"]"), Format::Json);
        assert_eq!(detect(Path::new("-"), "a@x.com"), Format::Csv);
    }
}
