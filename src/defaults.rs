//! The library's defaults for a run, in one place: what `fleetauth grant ORGS` does with no
//! other flag. clap's default values in `cli` are these (a test checks they agree), and the
//! commands that run a grant themselves (demo, bench, check, token) start from them.
//! `cli` and `config` both read them; neither imports the other for them.

use std::time::Duration;

pub const CONCURRENCY: usize = 8;
pub const RATE: f64 = 10.0;
pub const REPLICATION_TIMEOUT: Duration = Duration::from_secs(5 * 60);
pub const MAX_RETRIES: u32 = 5;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const FRESH_FOR: Duration = Duration::from_secs(60 * 60);
pub const OUT_DIR: &str = "fleetauth-out";
pub const INSTANCE_URL: &str = "https://test.salesforce.com";
pub const AUDIENCE: &str = "https://test.salesforce.com";
/// After a `login rate exceeded`, no request starts for this long.
pub const RATE_LIMITED_PAUSE: Duration = Duration::from_secs(5);
/// After an interruption, how long requests in flight may finish.
pub const GRACE: Duration = Duration::from_secs(3);
