//! Stage 2: plan. Decide, before anything is sent, which targets are granted: each username
//! once (compared case-insensitively), the repeats reported as skipped.

use std::collections::HashMap;

use crate::input::{OrgList, Origin, Target};

#[derive(Debug, Clone)]
pub struct Plan {
    /// Targets to grant, first occurrence of each username, in list order.
    pub grant: Vec<Target>,
    /// Repeated rows and the origin of the row that is granted instead.
    pub duplicates: Vec<(Target, Origin)>,
}

pub fn plan(list: &OrgList) -> Plan {
    let mut seen: HashMap<String, Origin> = HashMap::with_capacity(list.targets.len());
    let mut grant = Vec::with_capacity(list.targets.len());
    let mut duplicates = Vec::new();
    for target in &list.targets {
        match seen.get(&target.username.to_lowercase()) {
            Some(first) => duplicates.push((target.clone(), *first)),
            None => {
                seen.insert(target.username.to_lowercase(), target.origin);
                grant.push(target.clone());
            }
        }
    }
    Plan { grant, duplicates }
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
        let plan = plan(&list);
        let names: Vec<_> = plan.grant.iter().map(|t| t.username.as_str()).collect();
        assert_eq!(names, ["a@x.com", "B@x.com", "c@x.com"]);
        assert_eq!(plan.duplicates.len(), 2);
        assert_eq!(plan.duplicates[0].1, Origin::Line(1));
        assert_eq!(plan.duplicates[1].1, Origin::Line(2));
    }
}
