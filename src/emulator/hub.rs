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

pub(crate) mod soql;
