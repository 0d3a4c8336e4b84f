//! Several lists read as one (`grant a.csv b.json`, the report.json of every shard of a CI
//! matrix): each is read and checked on its own, then their rows are planned together. A
//! username in two lists is one org: its rows must agree (a cell blank in one is taken from
//! the other), and an alias names one org across every list, as within one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{column_of, read, validate, Column, Format, InputError, OrgList, Origin, Target};

/// Read the lists at `paths` (`-`: standard input, at most once) as one [`OrgList`]. One list
/// is read exactly as [`read`] reads it; with several, every row's origin names its file.
pub fn read_all(paths: &[PathBuf], format: Option<Format>) -> Result<OrgList, InputError> {
    if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        return Err(InputError::StdinTwice);
    }
    // Among several lists, one that lists no org (a shard that drew none of a small fleet)
    // adds nothing; all of them empty is the error.
    let mut lists = Vec::with_capacity(paths.len());
    let mut empty = None;
    for path in paths {
        match read(path, format) {
            Ok(list) => lists.push(list),
            Err(e @ InputError::Empty { .. }) if paths.len() > 1 => empty = Some(e),
            Err(e) => return Err(e),
        }
    }
    if lists.is_empty() {
        if let Some(e) = empty {
            return Err(e);
        }
    }
    if lists.len() == 1 {
        if let Some(one) = lists.pop() {
            return Ok(one);
        }
    }
    merge(lists)
}

/// The rows of `lists`, in order, as one list. Lists of one shape (the same columns) keep
/// them; otherwise the columns are `username, alias, instanceUrl` and then every other
/// column of any list, so failed.csv is still a list `grant` reads back.
pub fn merge(lists: Vec<OrgList>) -> Result<OrgList, InputError> {
    let source = lists
        .iter()
        .map(|l| l.source.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let one_shape = lists
        .iter()
        .zip(lists.iter().skip(1))
        .all(|(a, b)| same_columns(&a.columns, &b.columns));
    let columns: Vec<String> = if one_shape {
        lists.first().map(|l| l.columns.clone()).unwrap_or_default()
    } else {
        let mut columns: Vec<String> = ["username", "alias", "instanceUrl"]
            .map(String::from)
            .to_vec();
        for name in lists.iter().flat_map(|l| &l.columns) {
            if column_of(name).is_none() && !columns.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                columns.push(name.clone());
            }
        }
        columns
    };
    let kinds: Vec<Option<Column>> = columns.iter().map(|c| column_of(c)).collect();

    let mut targets: Vec<Target> = Vec::new();
    let mut excluded = Vec::new();
    // The first row of each username: its index in `targets` and the list it came from.
    let mut first: HashMap<String, (usize, usize)> = HashMap::new();
    let mut rows: Vec<(Origin, String)> = Vec::new();
    for (n, list) in lists.into_iter().enumerate() {
        let OrgList {
            source: name,
            columns: own,
            targets: rows_of_list,
            excluded: left_out,
        } = list;
        let name: Arc<str> = Arc::from(name);
        // Where each merged column's cell comes from, worked out once per list.
        let cells: Vec<Cell> = columns
            .iter()
            .zip(&kinds)
            .map(|(column, kind)| match kind {
                Some(kind) => Cell::Field(*kind),
                None => Cell::Own(own.iter().position(|c| c.eq_ignore_ascii_case(column))),
            })
            .collect();
        let reshape = |mut t: Target| {
            if !one_shape {
                t.record = reshaped(&t, &cells);
            }
            t.origin = Origin::In(name.clone(), Box::new(t.origin));
            t
        };
        excluded.extend(left_out.into_iter().map(|(t, why)| (reshape(t), why)));
        targets.reserve(rows_of_list.len());
        for target in rows_of_list.into_iter().map(reshape) {
            let key = target.username.to_lowercase();
            match first.get(&key) {
                // A repeat within one list is the plan's to report, as for a single list.
                Some(&(_, from)) if from == n => {}
                Some(&(index, _)) => {
                    if let Some(kept) = targets.get_mut(index) {
                        rows.extend(agree(kept, &target, &columns, &kinds));
                    }
                }
                None => {
                    first.insert(key, (targets.len(), n));
                }
            }
            targets.push(target);
        }
    }
    rows.extend(validate::duplicate_aliases(&targets));
    if !rows.is_empty() {
        return Err(InputError::Rejected {
            source_name: source,
            rows,
        });
    }
    Ok(OrgList {
        source,
        columns,
        targets,
        excluded,
    })
}

fn same_columns(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_ignore_ascii_case(y))
}

/// Where one cell of a merged row comes from.
enum Cell {
    /// One of the three fleetauth reads, from the target's own field.
    Field(Column),
    /// The cell of the row's own list's column of that name (`None`: its list has none).
    Own(Option<usize>),
}

/// `target`'s cells under the merged columns: the three fleetauth reads from its fields, every
/// other one from the cell of its own list's column of that name (blank when its list has none).
fn reshaped(target: &Target, cells: &[Cell]) -> Vec<String> {
    cells
        .iter()
        .map(|cell| match cell {
            Cell::Field(Column::Username) => target.username.clone(),
            Cell::Field(Column::Alias) => target.alias.clone().unwrap_or_default(),
            Cell::Field(Column::InstanceUrl) => target.instance_url.clone().unwrap_or_default(),
            Cell::Own(at) => at
                .and_then(|i| target.record.get(i))
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}

/// Check that `other`, a row of another list with `kept`'s username, says the same of the
/// org: a cell given in both must agree; one blank in `kept` is taken from `other`. One row
/// per disagreement, naming both rows.
fn agree(
    kept: &mut Target,
    other: &Target,
    columns: &[String],
    kinds: &[Option<Column>],
) -> Vec<(Origin, String)> {
    let mut rows = Vec::new();
    for (i, name) in columns.iter().enumerate() {
        let (Some(mine), Some(theirs)) = (kept.record.get(i), other.record.get(i)) else {
            continue;
        };
        let (mine, theirs) = (mine.trim(), theirs.trim());
        if theirs.is_empty() {
            continue;
        }
        if mine.is_empty() {
            let theirs = theirs.to_string();
            match kinds.get(i).copied().flatten() {
                Some(Column::Alias) if kept.alias.is_none() => kept.alias = Some(theirs.clone()),
                Some(Column::InstanceUrl) if kept.instance_url.is_none() => {
                    kept.instance_url = Some(theirs.clone())
                }
                _ => {}
            }
            if let Some(cell) = kept.record.get_mut(i) {
                *cell = theirs;
            }
            continue;
        }
        let same = match kinds.get(i).copied().flatten() {
            Some(Column::Username) => mine.eq_ignore_ascii_case(theirs),
            _ => mine == theirs,
        };
        if !same {
            rows.push((
                other.origin.clone(),
                format!(
                    "{} is also on {} with {name} {mine:?}, here {theirs:?}; an org is one row in every list: make them agree, or leave the cell blank in one",
                    other.username, kept.origin
                ),
            ));
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn list(name: &str, text: &str) -> OrgList {
        let format = if name.ends_with(".json") {
            Format::Json
        } else {
            Format::Csv
        };
        parse(name, text, format).unwrap()
    }

    #[test]
    fn rows_of_every_list_are_kept_in_order_and_name_their_file() {
        let merged = merge(vec![
            list("a.csv", "a@x.com\nb@x.com\n"),
            list("b.csv", "c@x.com\n"),
        ])
        .unwrap();
        let names: Vec<_> = merged.targets.iter().map(|t| t.username.as_str()).collect();
        assert_eq!(names, ["a@x.com", "b@x.com", "c@x.com"]);
        assert_eq!(merged.source, "a.csv, b.csv");
        assert_eq!(merged.columns, ["username"], "one shape keeps its columns");
        assert_eq!(merged.targets[2].origin.to_string(), "b.csv:line 1");
        assert_eq!(merged.targets[2].origin.at("ignored"), "b.csv:line 1");
    }

    #[test]
    fn lists_of_different_shapes_get_the_union_of_their_columns() {
        let merged = merge(vec![
            list("a.csv", "username,team\na@x.com,red\n"),
            list(
                "r.json",
                r#"[{"username":"b@x.com","alias":"s2","instanceUrl":"https://b.my.salesforce.com"}]"#,
            ),
        ])
        .unwrap();
        assert_eq!(merged.columns, ["username", "alias", "instanceUrl", "team"]);
        assert_eq!(merged.targets[0].record, ["a@x.com", "", "", "red"]);
        assert_eq!(
            merged.targets[1].record,
            ["b@x.com", "s2", "https://b.my.salesforce.com", ""]
        );
    }

    #[test]
    fn a_username_in_two_lists_is_one_org_whose_blanks_are_filled() {
        let merged = merge(vec![
            list("a.csv", "username,alias\nA@x.com,\n"),
            list("b.csv", "username,alias\na@X.com,s1\n"),
        ])
        .unwrap();
        assert_eq!(merged.targets[0].alias.as_deref(), Some("s1"));
        assert_eq!(merged.targets[0].record, ["A@x.com", "s1"]);
        let plan = crate::plan::plan(&merged, None, |_| None);
        assert_eq!(plan.grant.len(), 1);
        assert_eq!(plan.duplicates.len(), 1);
    }

    #[test]
    fn conflicting_rows_and_an_alias_of_two_orgs_across_lists_are_rejected() {
        let err = merge(vec![
            list(
                "a.csv",
                "username,instanceUrl\na@x.com,https://a.my.salesforce.com\n",
            ),
            list(
                "b.csv",
                "username,instanceUrl\nb@x.com,\na@x.com,https://z.my.salesforce.com\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("b.csv:line 3") && err.contains("a.csv:line 2"),
            "{err}"
        );
        assert!(err.contains("instanceUrl"), "{err}");

        let err = merge(vec![
            list("a.csv", "username,alias\na@x.com,ci\n"),
            list("b.json", r#"[{"username":"b@x.com","alias":"ci"}]"#),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("b.json:entry 1") && err.contains("a.csv:line 2"),
            "{err}"
        );
    }

    #[test]
    fn stdin_is_read_once() {
        let err = read_all(&["-".into(), "-".into()], None).unwrap_err();
        assert!(matches!(err, InputError::StdinTwice), "{err}");
    }
}
