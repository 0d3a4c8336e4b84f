//! A CSV list: one username a line, or a header naming the username column (and, optionally,
//! alias and instance URL); every other column is kept for failed.csv.

use super::{column_of, non_blank, Column, InputError, OrgList, Origin, Target};

fn csv_error(source_name: &str, e: csv::Error) -> InputError {
    InputError::Syntax {
        source_name: source_name.to_string(),
        format: "CSV",
        message: e.to_string(),
    }
}

/// Undo the quote fleetauth's CSV outputs put before a cell that a spreadsheet would run as a
/// formula (`'=…`, `'+…`, `'-…`, `'@…`), so failed.csv reads back as it was written.
fn unneutralize(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

pub(super) fn parse(source_name: &str, text: &str) -> Result<OrgList, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader
        .records()
        .filter(|r| r.as_ref().map_or(true, |r| r.iter().any(|f| !f.is_empty())));
    let Some(first) = records
        .next()
        .transpose()
        .map_err(|e| csv_error(source_name, e))?
    else {
        return Err(InputError::Empty {
            source_name: source_name.to_string(),
        });
    };
    let header: Vec<Option<Column>> = first.iter().map(column_of).collect();
    let has_header = header.iter().any(Option::is_some) && !first.iter().any(|f| f.contains('@'));

    let (columns, mapping, pending_first) = if has_header {
        if !header.iter().any(|c| matches!(c, Some(Column::Username))) {
            return Err(InputError::NoUsernameColumn {
                source_name: source_name.to_string(),
                found: first.iter().collect::<Vec<_>>().join(", "),
            });
        }
        (first.iter().map(str::to_string).collect(), header, None)
    } else {
        (
            vec!["username".to_string()],
            vec![Some(Column::Username)],
            Some(first),
        )
    };

    let mut targets = Vec::new();
    for record in pending_first.into_iter().map(Ok).chain(records) {
        let record = record.map_err(|e| csv_error(source_name, e))?;
        let line = record.position().map_or(0, |p| p.line());
        let mut target = Target {
            username: String::new(),
            alias: None,
            instance_url: None,
            origin: Origin::Line(line),
            record: Vec::with_capacity(columns.len()),
            place: 0,
        };
        for (i, column) in mapping.iter().enumerate() {
            let cell = unneutralize(record.get(i).unwrap_or(""));
            // The first matching column wins: `username` beside `SignupUsername` is one value.
            match column {
                Some(Column::Username) if target.username.is_empty() => {
                    target.username = cell.to_string()
                }
                Some(Column::Alias) if target.alias.is_none() => target.alias = non_blank(cell),
                Some(Column::InstanceUrl) if target.instance_url.is_none() => {
                    target.instance_url = non_blank(cell)
                }
                _ => {}
            }
            target.record.push(cell.to_string());
        }
        targets.push(target);
    }
    Ok(OrgList {
        source: source_name.to_string(),
        columns,
        targets,
        excluded: Vec::new(),
    })
}
