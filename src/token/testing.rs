//! What the token module's tests share: answers built or recorded, classified against a
//! loopback token host.

use std::path::PathBuf;

use url::Url;

use super::{classify, Answer, Expect, Grant, GrantError};
use crate::emulator::answers::RawAnswer;
use crate::urls::HostPolicy;

pub(super) const TOKEN: &str =
    "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX.LVpxezPwuX5VAIrrbbHMuol7GQxnMe";
pub(super) const ID: &str = "https://test.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS";

pub(super) fn loopback() -> Url {
    Url::parse("http://127.0.0.1:9/services/oauth2/token").unwrap()
}

pub(super) fn classify_raw(raw: &RawAnswer) -> Result<Grant, GrantError> {
    let host = loopback();
    let hosts = HostPolicy::default().with_host_of(&host);
    classify(
        &Answer {
            status: raw.status,
            content_type: raw.header("content-type"),
            location: raw.header("location"),
            body: raw.body.as_bytes(),
        },
        &Expect {
            token_host: &host,
            hosts: &hosts,
        },
    )
}

pub(super) fn answer(status: u16, body: &str) -> Result<Grant, GrantError> {
    classify_raw(&RawAnswer {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.into(),
    })
}

pub(super) fn success(token: &str, instance: &str, id: &str) -> Result<Grant, GrantError> {
    answer(
        200,
        &serde_json::json!({"access_token": token, "instance_url": instance, "id": id}).to_string(),
    )
}

/// Every recorded answer in `fixtures/answers/<class>/`, with its file.
pub(super) fn recorded_answers() -> Vec<(PathBuf, RawAnswer)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/answers");
    let mut answers = Vec::new();
    for class in std::fs::read_dir(&root).unwrap() {
        let class = class.unwrap().path();
        if !class.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&class).unwrap() {
            let file = file.unwrap().path();
            let raw = RawAnswer::parse(&std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|| panic!("{} does not parse", file.display()));
            answers.push((file, raw));
        }
    }
    answers
}
