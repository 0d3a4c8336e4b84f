//! Stage 2: plan. Decide, before anything is sent, which targets are granted: each username
//! once (compared case-insensitively), and not again while its auth file from an earlier run
//! is fresh (resume after an interruption or a partial failure).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::input::{OrgList, Origin, Target};

#[derive(Debug, Clone)]
pub struct Plan {
    /// Targets to grant, first occurrence of each username, in list order.
    pub grant: Vec<Target>,
    /// Repeated rows and the origin of the row that is granted instead.
    pub duplicates: Vec<(Target, Origin)>,
    /// Targets authorized recently enough by an earlier run: their auth file and why skipped.
    pub fresh: Vec<(Target, PathBuf, String)>,
}

/// Plan `list`. `fresh` says, for a target, where its still-fresh auth file is and why it
/// counts as fresh (`None`: grant it).
pub fn plan(list: &OrgList, fresh: impl Fn(&Target) -> Option<(PathBuf, String)>) -> Plan {
    let mut seen: HashMap<String, Origin> = HashMap::with_capacity(list.targets.len());
    let mut plan = Plan {
        grant: Vec::with_capacity(list.targets.len()),
        duplicates: Vec::new(),
        fresh: Vec::new(),
    };
    for target in &list.targets {
        let key = target.username.to_lowercase();
        if let Some(first) = seen.get(&key) {
            plan.duplicates.push((target.clone(), *first));
            continue;
        }
        seen.insert(key, target.origin);
        match fresh(target) {
            Some((file, why)) => plan.fresh.push((target.clone(), file, why)),
            None => plan.grant.push(target.clone()),
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{parse, Format};

    #[test]
    fn duplicates_are_granted_once_case_insensitively() {
        let list = parse(
            "l.csv",
            "a@x.com\nB@x.com\nA@X.COM\nb@x.com\nc@x.com\n",
            Format::Csv,
        )
        .unwrap();
        let plan = plan(&list, |_| None);
        let names: Vec<_> = plan.grant.iter().map(|t| t.username.as_str()).collect();
        assert_eq!(names, ["a@x.com", "B@x.com", "c@x.com"]);
        assert_eq!(plan.duplicates.len(), 2);
        assert_eq!(plan.duplicates[0].1, Origin::Line(1));
        assert_eq!(plan.duplicates[1].1, Origin::Line(2));
    }

    #[test]
    fn fresh_targets_are_skipped_and_the_rest_granted() {
        let list = parse("l.csv", "a@x.com\nb@x.com\n", Format::Csv).unwrap();
        let plan = plan(&list, |t| {
            (t.username == "a@x.com").then(|| ("a.json".into(), "fresh".into()))
        });
        assert_eq!(plan.grant.len(), 1);
        assert_eq!(plan.grant[0].username, "b@x.com");
        assert_eq!(plan.fresh[0].0.username, "a@x.com");
    }
}
