//! `report.json`: the report as pretty JSON, the hand-off another CI system reads back.

use super::{Formatter, Report};

pub struct Json;

impl Formatter for Json {
    #[expect(
        clippy::expect_used,
        reason = "a report holds only strings, numbers and maps, which always serialize"
    )]
    fn format(&self, report: &Report) -> String {
        let mut s = serde_json::to_string_pretty(report).expect("a report always serializes");
        s.push('\n');
        s
    }

    fn write_to(&self, report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        out.write_all(b"\n")
    }
}

#[cfg(test)]
mod tests {
    use super::super::sample;
    use super::*;

    #[test]
    fn every_org_carries_the_hand_off_fields() {
        let v: serde_json::Value = serde_json::from_str(&Json.format(&sample::report())).unwrap();
        let org = &v["orgs"][0];
        for key in [
            "username",
            "alias",
            "orgId",
            "userId",
            "instanceUrl",
            "tokenHost",
            "audience",
            "clientId",
            "issuedAt",
            "replicationWaitMs",
        ] {
            assert!(org.get(key).is_some(), "{key} missing from {org}");
        }
        assert_eq!(v["summary"]["list"], "orgs.csv");
    }
}
