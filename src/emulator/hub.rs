//! The emulated Dev Hub (reference dev-hub.md §2–§5): ScratchOrgInfo over REST for a hub
//! user's token only (a scratch org's token gets `INVALID_TYPE`), paged at
//! [`EmulatorConfig::hub_batch`] records with `nextRecordsUrl`, relationship fields nested,
//! `/limits`, and an External-Client-App hub mode in which scratch orgs refuse the hub's key.
//! The SOQL is parsed by a small strict parser of the shapes fleetauth and sf send: a
//! literal with a bad escape or an unescaped quote is a `MALFORMED_QUERY`, as on Salesforce.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value};

use super::server::ids;
use super::EmulatorConfig;

/// One scratch org the emulated hub created (a ScratchOrgInfo row).
#[derive(Debug, Clone)]
pub struct ScratchOrg {
    /// `SignupUsername`: the org's admin.
    pub username: String,
    /// `New`, `Creating`, `Active`, `Error` or `Deleted`.
    pub status: String,
    /// `YYYY-MM-DD`.
    pub expiration_date: String,
    /// `2026-12-01T23:04:11.000+0000`.
    pub created_date: String,
    /// `CreatedBy.Username`.
    pub created_by: String,
    /// `LoginUrl`; `None`: the emulator's own URL.
    pub login_url: Option<String>,
}

impl ScratchOrg {
    /// An Active org created yesterday by `ops@example.com`, expiring in seven days.
    pub fn active(username: impl Into<String>) -> Self {
        let now = time::OffsetDateTime::now_utc();
        Self {
            username: username.into(),
            status: "Active".into(),
            expiration_date: date(now + time::Duration::days(7)),
            created_date: datetime(now - time::Duration::days(1)),
            created_by: "ops@example.com".into(),
            login_url: None,
        }
    }

    pub fn with_status(mut self, status: &str) -> Self {
        self.status = status.into();
        self
    }

    /// Expires `days` from today (negative: already expired).
    pub fn expiring_in_days(mut self, days: i64) -> Self {
        self.expiration_date = date(time::OffsetDateTime::now_utc() + time::Duration::days(days));
        self
    }

    pub fn created_by(mut self, user: &str) -> Self {
        self.created_by = user.into();
        self
    }

    pub fn created_at(mut self, at: time::OffsetDateTime) -> Self {
        self.created_date = datetime(at);
        self
    }
}

fn date(t: time::OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

fn datetime(t: time::OffsetDateTime) -> String {
    format!(
        "{}T{:02}:{:02}:{:02}.000+0000",
        date(t),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The hub's state across requests: the query cursors still open, and counters.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    cursors: Mutex<HashMap<String, (String, Vec<Value>)>>,
    next_cursor: AtomicU64,
    /// ScratchOrgInfo query pages served (first pages and `nextRecordsUrl` pages).
    pub(crate) pages: AtomicU64,
}

/// Status and JSON body of a REST answer.
pub(crate) type RestAnswer = (u16, Value);

fn rest_error(status: u16, code: &str, message: &str) -> RestAnswer {
    (status, json!([{"message": message, "errorCode": code}]))
}

pub(crate) fn is_dev_hub(config: &EmulatorConfig, username: &str) -> bool {
    config.users.get(username).is_some_and(|u| u.dev_hub)
}

/// In the External-Client-App hub mode a scratch org does not know the hub's app: its token
/// endpoint answers `invalid_client_id` while the hub itself grants.
pub(crate) fn eca_refuses(config: &EmulatorConfig, username: &str) -> bool {
    config.eca_hub && !is_dev_hub(config, username)
}

/// The scratch orgs the hub knows: the configured ones, else one Active org per known user
/// (`known`: every user with a session or in the config), as sf's tests expect.
fn scratch_orgs(config: &EmulatorConfig, known: &[String]) -> Vec<ScratchOrg> {
    if !config.scratch_orgs.is_empty() {
        return config.scratch_orgs.clone();
    }
    let mut names: Vec<String> = known
        .iter()
        .cloned()
        .chain(config.users.keys().cloned())
        .filter(|u| !is_dev_hub(config, u))
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .map(|u| {
            let mut org = ScratchOrg::active(u);
            org.expiration_date = "2026-12-31".into();
            org.created_date = "2026-11-23T00:00:00.000+0000".into();
            org
        })
        .collect()
}

fn record(org: &ScratchOrg, base_url: &str, version: &str) -> HashMap<&'static str, Value> {
    let id15 = ids::org_id(&org.username)[..15].to_string();
    let id = ids::with_checksum(&format!("2SR{}", &id15[3..]));
    HashMap::from([
        (
            "attributes",
            json!({"type": "ScratchOrgInfo", "url": format!("/services/data/{version}/sobjects/ScratchOrgInfo/{id}")}),
        ),
        ("Id", json!(id)),
        ("SignupUsername", json!(org.username)),
        ("ScratchOrg", json!(id15)),
        (
            "LoginUrl",
            json!(org
                .login_url
                .clone()
                .unwrap_or_else(|| base_url.to_string())),
        ),
        ("Status", json!(org.status)),
        ("ExpirationDate", json!(org.expiration_date)),
        ("CreatedDate", json!(org.created_date)),
        (
            "CreatedBy",
            json!({"attributes": {"type": "User"}, "Username": org.created_by}),
        ),
        ("OrgName", json!("Emulated Scratch Org")),
        ("Edition", json!("Developer")),
        ("Namespace", Value::Null),
    ])
}

/// The value of `field` in a record, as text for comparisons (`CreatedBy.Username` nested).
fn field_text(record: &HashMap<&'static str, Value>, field: &str) -> Option<String> {
    let (head, tail) = match field.split_once('.') {
        Some((h, t)) => (h, Some(t)),
        None => (field, None),
    };
    let key = record.keys().find(|k| k.eq_ignore_ascii_case(head))?;
    let mut value = record.get(key)?;
    if let Some(tail) = tail {
        value = value
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(tail))?
            .1;
    }
    value.as_str().map(str::to_string)
}

/// A query for ScratchOrgInfo from `username`'s session: the first page.
pub(crate) fn query(
    config: &EmulatorConfig,
    hub: &Hub,
    base_url: &str,
    version: &str,
    username: &str,
    known: &[String],
    soql: &str,
) -> RestAnswer {
    if !is_dev_hub(config, username) {
        return rest_error(
            400,
            "INVALID_TYPE",
            "sObject type 'ScratchOrgInfo' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name.",
        );
    }
    let parsed = match soql::parse(soql) {
        Ok(q) => q,
        Err(why) => return rest_error(400, "MALFORMED_QUERY", &why),
    };
    if !parsed.from.eq_ignore_ascii_case("ScratchOrgInfo") {
        return rest_error(400, "INVALID_TYPE", "only ScratchOrgInfo is emulated here");
    }
    const FIELDS: [&str; 12] = [
        "Id",
        "SignupUsername",
        "ScratchOrg",
        "LoginUrl",
        "Status",
        "ExpirationDate",
        "CreatedDate",
        "CreatedBy",
        "CreatedBy.Username",
        "OrgName",
        "Edition",
        "Namespace",
    ];
    let known_field = |f: &str| FIELDS.iter().any(|k| k.eq_ignore_ascii_case(f));
    if let Some(bad) = parsed
        .fields
        .iter()
        .chain(parsed.conditions.iter().map(|c| &c.field))
        .find(|f| !known_field(f))
    {
        return rest_error(
            400,
            "INVALID_FIELD",
            &format!("No such column '{bad}' on entity 'ScratchOrgInfo'."),
        );
    }
    let mut rows: Vec<(HashMap<&'static str, Value>, String)> = scratch_orgs(config, known)
        .iter()
        .map(|o| record(o, base_url, version))
        .filter(|r| parsed.conditions.iter().all(|c| c.holds(r)))
        .map(|r| {
            let key = parsed
                .order_by
                .as_ref()
                .and_then(|(f, _)| field_text(&r, f))
                .unwrap_or_default();
            (r, key)
        })
        .collect();
    if let Some((_, descending)) = &parsed.order_by {
        rows.sort_by(|a, b| a.1.cmp(&b.1));
        if *descending {
            rows.reverse();
        }
    }
    if let Some(limit) = parsed.limit {
        rows.truncate(limit);
    }
    let records: Vec<Value> = rows
        .into_iter()
        .map(|(r, _)| select(&r, &parsed.fields))
        .collect();
    let total = records.len();
    let id = format!(
        "01gEMU{:09}",
        hub.next_cursor.fetch_add(1, Ordering::Relaxed)
    );
    hub.lock()
        .insert(id.clone(), (username.to_string(), records));
    page(config, hub, version, username, &id, 0, total)
}

/// A `nextRecordsUrl` page: `/services/data/vNN.0/query/<cursor>-<offset>`, for the session
/// that opened the cursor only.
pub(crate) fn next_page(
    config: &EmulatorConfig,
    hub: &Hub,
    version: &str,
    username: &str,
    locator: &str,
) -> RestAnswer {
    let parsed = locator
        .rsplit_once('-')
        .and_then(|(id, offset)| Some((id, offset.parse::<usize>().ok()?)));
    let Some((id, offset)) = parsed else {
        return rest_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    let total = match hub.lock().get(id) {
        Some((owner, records)) if owner == username => records.len(),
        _ => return rest_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator"),
    };
    page(config, hub, version, username, id, offset, total)
}

fn page(
    config: &EmulatorConfig,
    hub: &Hub,
    version: &str,
    _username: &str,
    id: &str,
    offset: usize,
    total: usize,
) -> RestAnswer {
    hub.pages.fetch_add(1, Ordering::Relaxed);
    let batch = config.hub_batch.clamp(1, 2000);
    let mut cursors = hub.lock();
    let Some((_, records)) = cursors.get(id) else {
        return rest_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
    };
    let end = (offset + batch).min(total);
    let slice: Vec<Value> = records.get(offset..end).unwrap_or_default().to_vec();
    let done = end >= total;
    let mut body = json!({"totalSize": total, "done": done, "records": slice});
    if done {
        cursors.remove(id);
    } else {
        body["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{id}-{end}"));
    }
    (200, body)
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Vec<Value>)>> {
        self.cursors.lock().expect("cursor lock is never poisoned")
    }
}

/// The selected fields of a record, `CreatedBy.Username` nested as Salesforce nests it.
fn select(record: &HashMap<&'static str, Value>, fields: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("attributes".into(), record["attributes"].clone());
    for f in fields {
        match f.split_once('.') {
            Some((head, tail)) => {
                let Some(value) = field_text(record, f) else {
                    continue;
                };
                let entry = out
                    .entry(canonical(head))
                    .or_insert_with(|| json!({"attributes": {"type": "User"}}));
                entry[canonical(tail)] = json!(value);
            }
            None => {
                let key = canonical(f);
                let value = record
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(f))
                    .map_or(Value::Null, |(_, v)| v.clone());
                out.insert(key, value);
            }
        }
    }
    Value::Object(out)
}

/// A field name as Salesforce spells it in answers.
fn canonical(f: &str) -> String {
    [
        "Id",
        "SignupUsername",
        "ScratchOrg",
        "LoginUrl",
        "Status",
        "ExpirationDate",
        "CreatedDate",
        "CreatedBy",
        "Username",
        "OrgName",
        "Edition",
        "Namespace",
    ]
    .iter()
    .find(|k| k.eq_ignore_ascii_case(f))
    .map_or_else(|| f.to_string(), |k| (*k).to_string())
}

/// `/services/data/vNN.0/limits`: for a hub, the scratch-org limits among others.
pub(crate) fn limits(config: &EmulatorConfig, username: &str, known: &[String]) -> RestAnswer {
    let (active_max, daily_max) = config.hub_limits;
    let orgs = scratch_orgs(config, known);
    let today = date(time::OffsetDateTime::now_utc());
    let active = orgs.iter().filter(|o| o.status == "Active").count();
    let created_today = orgs
        .iter()
        .filter(|o| o.created_date.starts_with(&today))
        .count();
    let remaining =
        |max: u32, used: usize| max.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX));
    let mut body = json!({
        "DailyApiRequests": {"Max": 15000, "Remaining": 14990},
        "DataStorageMB": {"Max": 200, "Remaining": 200},
    });
    if is_dev_hub(config, username) {
        body["ActiveScratchOrgs"] =
            json!({"Max": active_max, "Remaining": remaining(active_max, active)});
        body["DailyScratchOrgs"] =
            json!({"Max": daily_max, "Remaining": remaining(daily_max, created_today)});
    }
    (200, body)
}

/// The strict SOQL subset: `SELECT f, g.h FROM T [WHERE c AND c ...] [ORDER BY f [ASC|DESC]]
/// [LIMIT n]`, each condition `f op literal` or `f [NOT] IN (literal, ...)`.
pub(crate) mod soql {
    use std::collections::HashMap;

    use serde_json::Value;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Token {
        Word(String),
        Text(String),
        Op(&'static str),
        Open,
        Close,
        Comma,
    }

    /// A literal: quoted text, or a bare date, datetime or number.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) enum Literal {
        Text(String),
        Bare(String),
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Condition {
        pub(crate) field: String,
        op: &'static str,
        values: Vec<Literal>,
        negated: bool,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Query {
        pub(crate) fields: Vec<String>,
        pub(crate) from: String,
        pub(crate) conditions: Vec<Condition>,
        /// Field, descending.
        pub(crate) order_by: Option<(String, bool)>,
        pub(crate) limit: Option<usize>,
    }

    fn tokens(soql: &str) -> Result<Vec<Token>, String> {
        let mut out = Vec::new();
        let mut chars = soql.chars().peekable();
        while let Some(&c) = chars.peek() {
            match c {
                c if c.is_whitespace() => {
                    chars.next();
                }
                '(' | ')' | ',' => {
                    chars.next();
                    out.push(match c {
                        '(' => Token::Open,
                        ')' => Token::Close,
                        _ => Token::Comma,
                    });
                }
                '=' => {
                    chars.next();
                    out.push(Token::Op("="));
                }
                '!' | '<' | '>' => {
                    chars.next();
                    let eq = chars.peek() == Some(&'=');
                    if eq {
                        chars.next();
                    }
                    out.push(Token::Op(match (c, eq) {
                        ('!', true) => "!=",
                        ('<', true) => "<=",
                        ('>', true) => ">=",
                        ('<', false) => "<",
                        ('>', false) => ">",
                        _ => return Err("unexpected token: '!'".into()),
                    }));
                }
                '\'' => {
                    chars.next();
                    let mut text = String::new();
                    loop {
                        match chars.next() {
                            None => return Err("unterminated string literal".into()),
                            Some('\'') => break,
                            Some('\\') => {
                                let e = chars.next().ok_or("unterminated string literal")?;
                                text.push(match e {
                                    'n' | 'N' => '\n',
                                    'r' | 'R' => '\r',
                                    't' | 'T' => '\t',
                                    'b' | 'B' => '\u{8}',
                                    'f' | 'F' => '\u{c}',
                                    '"' | '\'' | '\\' => e,
                                    other => {
                                        return Err(format!(
                                            "Invalid string literal: Illegal character sequence '\\{other}' in string literal."
                                        ))
                                    }
                                });
                            }
                            Some(c) => text.push(c),
                        }
                    }
                    out.push(Token::Text(text));
                }
                c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') => {
                    let mut word = String::new();
                    while let Some(&c) = chars.peek() {
                        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') {
                            word.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    out.push(Token::Word(word));
                }
                other => return Err(format!("unexpected token: '{other}'")),
            }
        }
        Ok(out)
    }

    struct Cursor {
        tokens: Vec<Token>,
        at: usize,
    }

    impl Cursor {
        fn peek(&self) -> Option<&Token> {
            self.tokens.get(self.at)
        }

        fn next(&mut self) -> Option<Token> {
            let t = self.tokens.get(self.at).cloned();
            self.at += 1;
            t
        }

        fn keyword(&mut self, k: &str) -> bool {
            match self.peek() {
                Some(Token::Word(w)) if w.eq_ignore_ascii_case(k) => {
                    self.at += 1;
                    true
                }
                _ => false,
            }
        }

        fn expect_keyword(&mut self, k: &str) -> Result<(), String> {
            if self.keyword(k) {
                Ok(())
            } else {
                Err(format!("expecting '{k}', found {}", self.shown()))
            }
        }

        fn shown(&self) -> String {
            match self.peek() {
                None => "end of query".into(),
                Some(Token::Word(w)) => format!("'{w}'"),
                Some(Token::Text(_)) => "a string literal".into(),
                Some(t) => format!("{t:?}"),
            }
        }

        fn name(&mut self) -> Result<String, String> {
            match self.next() {
                Some(Token::Word(w))
                    if w.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) =>
                {
                    Ok(w)
                }
                _ => {
                    self.at -= 1;
                    Err(format!("expecting a field name, found {}", self.shown()))
                }
            }
        }

        fn literal(&mut self) -> Result<Literal, String> {
            match self.next() {
                Some(Token::Text(t)) => Ok(Literal::Text(t)),
                Some(Token::Word(w)) if w.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
                    Ok(Literal::Bare(w))
                }
                _ => {
                    self.at -= 1;
                    Err(format!("expecting a literal, found {}", self.shown()))
                }
            }
        }
    }

    const RESERVED: [&str; 8] = ["from", "where", "and", "or", "order", "by", "limit", "in"];

    pub(crate) fn parse(soql: &str) -> Result<Query, String> {
        let mut c = Cursor {
            tokens: tokens(soql)?,
            at: 0,
        };
        c.expect_keyword("SELECT")?;
        let mut fields = vec![c.name()?];
        while c.peek() == Some(&Token::Comma) {
            c.next();
            fields.push(c.name()?);
        }
        if let Some(f) = fields
            .iter()
            .find(|f| RESERVED.iter().any(|r| r.eq_ignore_ascii_case(f)))
        {
            return Err(format!("unexpected token: '{f}'"));
        }
        c.expect_keyword("FROM")?;
        let from = c.name()?;
        let mut conditions = Vec::new();
        if c.keyword("WHERE") {
            loop {
                conditions.push(condition(&mut c)?);
                if c.keyword("OR") {
                    return Err("OR is not emulated".into());
                }
                if !c.keyword("AND") {
                    break;
                }
            }
        }
        let mut order_by = None;
        if c.keyword("ORDER") {
            c.expect_keyword("BY")?;
            let field = c.name()?;
            let descending = if c.keyword("DESC") {
                true
            } else {
                c.keyword("ASC");
                false
            };
            order_by = Some((field, descending));
        }
        let mut limit = None;
        if c.keyword("LIMIT") {
            match c.next() {
                Some(Token::Word(n)) => {
                    limit = Some(n.parse().map_err(|_| format!("bad LIMIT '{n}'"))?);
                }
                _ => return Err("expecting a number after LIMIT".into()),
            }
        }
        if c.peek().is_some() {
            return Err(format!("unexpected token: {}", c.shown()));
        }
        Ok(Query {
            fields,
            from,
            conditions,
            order_by,
            limit,
        })
    }

    fn condition(c: &mut Cursor) -> Result<Condition, String> {
        let field = c.name()?;
        let negated = c.keyword("NOT");
        if c.keyword("IN") {
            if c.next() != Some(Token::Open) {
                return Err("expecting '(' after IN".into());
            }
            let mut values = vec![c.literal()?];
            loop {
                match c.next() {
                    Some(Token::Comma) => values.push(c.literal()?),
                    Some(Token::Close) => break,
                    _ => return Err("expecting ',' or ')' in an IN list".into()),
                }
            }
            return Ok(Condition {
                field,
                op: "in",
                values,
                negated,
            });
        }
        if negated {
            return Err("expecting IN after NOT".into());
        }
        let op = match c.next() {
            Some(Token::Op(op)) => op,
            _ => return Err(format!("expecting an operator after '{field}'")),
        };
        let value = c.literal()?;
        Ok(Condition {
            field,
            op,
            values: vec![value],
            negated: false,
        })
    }

    /// Dates and datetimes compare on their leading `YYYY-MM-DD[THH:MM:SS]` (UTC).
    fn comparable(s: &str) -> &str {
        s.get(..19).unwrap_or(s)
    }

    impl Condition {
        pub(crate) fn holds(&self, record: &HashMap<&'static str, Value>) -> bool {
            let Some(actual) = super::field_text(record, &self.field) else {
                return self.negated || self.op == "!=";
            };
            let equal = |l: &Literal| match l {
                Literal::Text(t) => t.to_lowercase() == actual.to_lowercase(),
                Literal::Bare(b) => comparable(b) == comparable(&actual),
            };
            let order = |l: &Literal| {
                let (Literal::Text(v) | Literal::Bare(v)) = l;
                let (a, v) = (comparable(&actual), comparable(v));
                // A date field against a datetime literal compares on the date.
                let n = a.len().min(v.len());
                a[..n].cmp(&v[..n])
            };
            use std::cmp::Ordering::*;
            match self.op {
                "in" => self.values.iter().any(equal) != self.negated,
                "=" => equal(&self.values[0]),
                "!=" => !equal(&self.values[0]),
                ">=" => order(&self.values[0]) != Less,
                "<=" => order(&self.values[0]) != Greater,
                ">" => order(&self.values[0]) == Greater,
                "<" => order(&self.values[0]) == Less,
                _ => false,
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_shapes_fleetauth_and_sf_send_parse() {
            let q = parse("SELECT Id, SignupUsername, CreatedBy.Username FROM ScratchOrgInfo WHERE Status = 'Active' AND CreatedDate >= 2026-12-01T00:00:00Z AND CreatedBy.Username = 'o\\'neil\\\\ops' ORDER BY CreatedDate LIMIT 5").unwrap();
            assert_eq!(q.fields.len(), 3);
            assert_eq!(q.conditions.len(), 3);
            assert_eq!(
                q.conditions[2].values,
                [Literal::Text("o'neil\\ops".into())]
            );
            assert_eq!(q.limit, Some(5));
            parse("SELECT Id FROM ScratchOrgInfo limit 1").unwrap();
            parse("SELECT ScratchOrg FROM ScratchOrgInfo WHERE ScratchOrg IN ('00D000000000001','00D000000000002')").unwrap();
        }

        #[test]
        fn bad_literals_are_malformed() {
            for bad in [
                "SELECT Id FROM ScratchOrgInfo WHERE SignupUsername = 'o'brien'",
                "SELECT Id FROM ScratchOrgInfo WHERE SignupUsername = 'a\\qb'",
                "SELECT Id FROM ScratchOrgInfo WHERE SignupUsername = 'open",
                "SELECT Id FROM ScratchOrgInfo WHERE SignupUsername = 'a' OR Id = 'b'",
                "SELECT FROM ScratchOrgInfo",
                "SELECT Id FROM ScratchOrgInfo WHERE",
            ] {
                assert!(parse(bad).is_err(), "{bad}");
            }
        }
    }
}
