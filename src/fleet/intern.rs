//! Text that many orgs of a run share (the token host, and an instance URL that several orgs
//! have in common): kept once and shared, so a fleet of a hundred thousand orgs does not hold
//! a hundred thousand copies of the same host.

use std::sync::{Arc, Mutex};

/// The last few distinct values seen, most recent first. A value not among them is kept as it
/// comes (orgs with their own instance URLs cost one small search each, and nothing more).
#[derive(Debug, Default)]
pub(super) struct Interner {
    recent: Mutex<Vec<Arc<str>>>,
}

/// How many distinct values are remembered.
const RECENT: usize = 8;

impl Interner {
    /// `text`, shared with an earlier equal value when there was one.
    pub(super) fn get(&self, text: &str) -> Arc<str> {
        let Ok(mut recent) = self.recent.lock() else {
            return Arc::from(text);
        };
        if let Some(at) = recent.iter().position(|v| &**v == text) {
            let value = recent.remove(at);
            recent.insert(0, Arc::clone(&value));
            return value;
        }
        let value: Arc<str> = Arc::from(text);
        recent.truncate(RECENT - 1);
        recent.insert(0, Arc::clone(&value));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_allocation_and_different_ones_do_not() {
        let interner = Interner::default();
        let a = interner.get("https://test.salesforce.com");
        let b = interner.get("https://test.salesforce.com");
        assert!(Arc::ptr_eq(&a, &b));
        let c = interner.get("https://other.my.salesforce.com");
        assert_eq!(&*c, "https://other.my.salesforce.com");
        assert!(!Arc::ptr_eq(&a, &c));
        // Still remembered after another value came in between.
        assert!(Arc::ptr_eq(
            &a,
            &interner.get("https://test.salesforce.com")
        ));
    }

    #[test]
    fn only_the_most_recent_values_are_kept() {
        let interner = Interner::default();
        let first = interner.get("v0");
        for i in 1..=RECENT {
            interner.get(&format!("v{i}"));
        }
        assert_eq!(interner.recent.lock().unwrap().len(), RECENT);
        assert!(!Arc::ptr_eq(&first, &interner.get("v0")));
    }
}
