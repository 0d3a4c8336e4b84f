//! Stage 2: plan. Decide, before anything is sent, which targets are granted: each username
//! once (compared case-insensitively), and not again while its auth file from an earlier run
//! is fresh (resume after an interruption or a partial failure).

use std::collections::hash_map::Entry;
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
    /// Entries the list itself left out (a Dev Hub), and why.
    pub excluded: Vec<(Target, String)>,
}

/// Plan `list`. `fresh` says, for a target, where its still-fresh auth file is and why it
/// counts as fresh (`None`: grant it).
pub fn plan(
    list: &OrgList,
    shard: Option<Shard>,
    fresh: impl Fn(&Target) -> Option<(PathBuf, String)>,
) -> Plan {
    plan_owned(list.targets.clone(), list.excluded.clone(), shard, fresh)
}

/// [`plan`] of a list's targets and exclusions, taken over rather than copied: a fleet of a
/// hundred thousand orgs never holds its rows twice.
pub fn plan_owned(
    targets: Vec<Target>,
    excluded: Vec<(Target, String)>,
    shard: Option<Shard>,
    fresh: impl Fn(&Target) -> Option<(PathBuf, String)>,
) -> Plan {
    // First what becomes of each row, with the usernames compared in place (no lower-case
    // copy of each is kept); then the rows are moved to their places.
    let places: Vec<Place> = {
        let mut seen: HashMap<Caseless<'_>, Origin> = HashMap::with_capacity(targets.len());
        let mut orgs = 0;
        targets
            .iter()
            .map(|target| {
                // A repeat shares its first row's shard: the shard hashes the lower case.
                let in_shard = shard.is_none_or(|s| s.contains(&target.username.to_lowercase()));
                match seen.entry(Caseless(&target.username)) {
                    Entry::Occupied(_) if !in_shard => Place::OutOfShard,
                    Entry::Occupied(first) => Place::Repeat(first.get().clone()),
                    Entry::Vacant(slot) => {
                        // Every org of the list is counted, in any shard: its place (and
                        // its `--alias-prefix` alias) is the same in every run of the list.
                        orgs += 1;
                        slot.insert(target.origin.clone());
                        if in_shard {
                            Place::First(orgs)
                        } else {
                            Place::OutOfShard
                        }
                    }
                }
            })
            .collect()
    };
    let mut plan = Plan {
        grant: Vec::with_capacity(targets.len()),
        duplicates: Vec::new(),
        fresh: Vec::new(),
        excluded,
    };
    for (mut target, place) in targets.into_iter().zip(places) {
        match place {
            Place::OutOfShard => {}
            Place::Repeat(first) => plan.duplicates.push((target, first)),
            Place::First(n) => match fresh({
                target.place = n;
                &target
            }) {
                Some((file, why)) => plan.fresh.push((target, file, why)),
                None => plan.grant.push(target),
            },
        }
    }
    plan
}

/// What becomes of one row of the list.
#[derive(Clone)]
enum Place {
    OutOfShard,
    /// A username already listed, at this origin.
    Repeat(Origin),
    /// The first row of an org, its place among the list's orgs.
    First(usize),
}

/// A username that hashes and compares as its lower case (`str::to_lowercase`), without a
/// lower-case copy: ASCII (every real username) byte by byte, anything else through its lower
/// case.
struct Caseless<'a>(&'a str);

impl std::hash::Hash for Caseless<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if self.0.is_ascii() {
            for b in self.0.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
        } else {
            for b in self.0.to_lowercase().bytes() {
                state.write_u8(b);
            }
        }
        state.write_u8(0xff);
    }
}

impl PartialEq for Caseless<'_> {
    fn eq(&self, other: &Self) -> bool {
        if self.0.is_ascii() && other.0.is_ascii() {
            self.0.eq_ignore_ascii_case(other.0)
        } else {
            self.0.to_lowercase() == other.0.to_lowercase()
        }
    }
}

impl Eq for Caseless<'_> {}

/// The aliases `--alias-prefix P` gives (`P<place>`: `P1..Pn` in list order) that the
/// list's `alias` column gives another org: sf would point the alias at one of them, whichever
/// is written last. One row per conflict, naming both orgs (an input error, as for two rows
/// sharing an alias).
pub fn prefix_alias_conflicts(plan: &Plan, prefix: &str) -> Vec<(Origin, String)> {
    let prefixed: HashMap<String, &Target> = plan
        .grant
        .iter()
        .chain(plan.fresh.iter().map(|(t, _, _)| t))
        .map(|target| (format!("{prefix}{}", target.place), target))
        .collect();
    let listed = plan
        .grant
        .iter()
        .chain(plan.fresh.iter().map(|(t, _, _)| t))
        .chain(plan.duplicates.iter().map(|(t, _)| t));
    let mut rows: Vec<(Origin, String)> = listed
        .filter_map(|target| {
            let alias = target.alias.as_deref()?;
            let other = prefixed
                .get(alias)
                .filter(|o| !o.username.eq_ignore_ascii_case(&target.username))?;
            Some((
                target.origin.clone(),
                format!(
                    "alias {alias:?} is also what --alias-prefix {prefix} gives {} (on {}); an alias names one org: rename the alias or pick another prefix",
                    other.username, other.origin
                ),
            ))
        })
        .collect();
    rows.sort_by(|(a, _), (b, _)| a.rank().cmp(&b.rank()));
    rows
}

/// One share of a list split across the jobs of a CI matrix: `K/N`, K from 1 to N. Every
/// username (case-insensitively) falls in exactly one share, the same on every machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn contains(&self, username: &str) -> bool {
        // FNV-1a: stable across machines, builds and Rust versions.
        let hash = username
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        hash % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("--shard {s}: write K/N with 1 <= K <= N, e.g. 2/4 (the second of four jobs)")
        };
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
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
        let plan = plan(&list, None, |_| None);
        let names: Vec<_> = plan.grant.iter().map(|t| t.username.as_str()).collect();
        assert_eq!(names, ["a@x.com", "B@x.com", "c@x.com"]);
        assert_eq!(plan.duplicates.len(), 2);
        assert_eq!(plan.duplicates[0].1, Origin::Line(1));
        assert_eq!(plan.duplicates[1].1, Origin::Line(2));
    }

    #[test]
    fn shards_are_disjoint_and_together_complete() {
        let text: String = (0..2000).map(|i| format!("user{i}@x.com\n")).collect();
        let list = parse("l.csv", &text, Format::Csv).unwrap();
        let mut seen = std::collections::HashMap::new();
        for k in 1..=7 {
            let shard: Shard = format!("{k}/7").parse().unwrap();
            let part = plan(&list, Some(shard), |_| None);
            assert!(
                part.grant.len() > 200,
                "shard {shard} is lopsided: {}",
                part.grant.len()
            );
            for t in part.grant {
                assert!(
                    seen.insert(t.username, k).is_none(),
                    "granted in two shards"
                );
            }
        }
        assert_eq!(seen.len(), 2000, "every org is in some shard");
        // Case does not move an org to another shard.
        let s: Shard = "3/7".parse().unwrap();
        assert_eq!(s.contains("User5@X.com"), s.contains("user5@x.com"));
    }

    #[test]
    fn usernames_that_differ_only_in_case_beyond_ascii_are_granted_once() {
        let list = parse(
            "l.csv",
            "ÉLODIE@x.com\nélodie@X.com\nelodie@x.com\nΣΑΣ@x.com\nσας@x.com\n",
            Format::Csv,
        )
        .unwrap();
        let plan = plan(&list, None, |_| None);
        let names: Vec<_> = plan.grant.iter().map(|t| t.username.as_str()).collect();
        // The same as comparing `to_lowercase()` copies, final sigma included.
        let expected: Vec<&str> = {
            let mut seen = std::collections::HashSet::new();
            list.targets
                .iter()
                .map(|t| t.username.as_str())
                .filter(|u| seen.insert(u.to_lowercase()))
                .collect()
        };
        assert_eq!(names, expected);
        assert_eq!(names, ["ÉLODIE@x.com", "elodie@x.com", "ΣΑΣ@x.com"]);
        assert_eq!(plan.duplicates.len(), 2);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fresh_targets_are_skipped_and_the_rest_granted() {
        let list = parse("l.csv", "a@x.com\nb@x.com\n", Format::Csv).unwrap();
        let plan = plan(&list, None, |t| {
            (t.username == "a@x.com").then(|| ("a.json".into(), "fresh".into()))
        });
        assert_eq!(plan.grant.len(), 1);
        assert_eq!(plan.grant[0].username, "b@x.com");
        assert_eq!(plan.fresh[0].0.username, "a@x.com");
    }

    #[test]
    fn a_prefix_alias_that_the_list_gives_another_org_is_a_conflict() {
        let list = parse(
            "l.csv",
            "username,alias\na@x.com,p2\nb@x.com,\nc@x.com,p3\n",
            Format::Csv,
        )
        .unwrap();
        let planned = plan(&list, None, |_| None);
        let rows = prefix_alias_conflicts(&planned, "p");
        // p2 is b's prefix alias but a's listed alias; p3 is c's own: no conflict.
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, Origin::Line(2));
        assert!(rows[0].1.contains("b@x.com"), "{}", rows[0].1);
        assert!(prefix_alias_conflicts(&planned, "q").is_empty());
        // A fresh org's alias counts too: it is still in sf's alias.json.
        let planned = plan(&list, None, |t| {
            (t.username == "a@x.com").then(|| ("a.json".into(), "fresh".into()))
        });
        // The numbers follow the list, not what is granted: b is still p2, which a's row gives a.
        let rows = prefix_alias_conflicts(&planned, "p");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0].1.contains("b@x.com"), "{}", rows[0].1);
        assert_eq!(planned.grant[0].place, 2);
    }
}
