//! Command-line flags (clap types only; doc comments are the help text). `config` turns these
//! into a validated configuration once; nothing past it sees clap.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::input::Format;

#[derive(Debug, Parser)]
#[command(
    name = "fleetauth",
    version = version(),
    about = "Authorize whole fleets of Salesforce scratch orgs at once through the OAuth 2.0 JWT bearer flow"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `X.Y.Z (TARGET, COMMIT)`, so that `fleetauth --version` has the version as its second word and
/// then what a bug report needs. Release builds name both (package.sh sets FLEETAUTH_BUILD_TARGET
/// and FLEETAUTH_BUILD_COMMIT); other builds name the target they were compiled for and "unknown".
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let target = option_env!("FLEETAUTH_BUILD_TARGET")
            .filter(|t| !t.is_empty())
            .map_or_else(compiled_target, str::to_string);
        let commit = option_env!("FLEETAUTH_BUILD_COMMIT")
            .filter(|c| !c.is_empty())
            .unwrap_or("unknown");
        format!("{} ({target}, {commit})", env!("CARGO_PKG_VERSION"))
    })
}

/// The target triple, as far as cfg tells it.
fn compiled_target() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" if cfg!(target_env = "musl") => format!("{arch}-unknown-linux-musl"),
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        os => format!("{arch}-unknown-{os}"),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Grant an access token for every org in a list and write one auth file per org.
    #[command(
        after_help = "Examples:\n  fleetauth grant orgs.csv --client-id \"$CONSUMER_KEY\" --jwt-key-file server.key\n  fleetauth grant -v hub@acme.com -i \"$CONSUMER_KEY\" -f server.key   # every Active scratch org of the Dev Hub\n  fleetauth grant -v hub@acme.com --created-after 24h --created-by ci@acme.com -i \"$CONSUMER_KEY\" -f server.key\n  fleetauth grant orgs.csv -v hub@acme.com -i \"$CONSUMER_KEY\" -f server.key   # fail typos, deleted and expired orgs at once\n  sf org list --json | fleetauth grant - --json > report.json\n  fleetauth grant fleetauth-out/failed.csv -i \"$CONSUMER_KEY\" -f server.key   # retry the failures\n  fleetauth grant orgs.csv -i \"$CONSUMER_KEY\" -f server.key --junit junit.xml --summary-md sum.md\n  fleetauth grant report.json -i \"$CONSUMER_KEY\" -f server.key --sf   # another job's orgs\n  fleetauth grant shard1/report.json shard2/report.json -i \"$CONSUMER_KEY\" -f server.key --sf   # every shard's, as one list\n\nIn GitHub Actions the summary also goes to $GITHUB_STEP_SUMMARY (unless --no-step-summary)."
    )]
    Grant(Box<GrantArgs>),
    /// Print a usable access token for one org (reusing its fresh auth file, else granting one).
    #[command(
        after_help = "Examples (consumer key and key from $SFDX_CLIENT_ID and $SFDX_HUB_KEY_BASE64, as in CI):\n  export SF_ACCESS_TOKEN=$(fleetauth token ci3)   # ci3: an alias in the out dir's auth files\n  fleetauth token test-abc@example.com --verify    # grant again if the session expired\n  fleetauth token ci3 --format github              # mask it, export it to the next steps\n  fleetauth token -o ci3 --format dotenv > org.env # SF_ACCESS_TOKEN, SF_TARGET_ORG, ...: set -a; . ./org.env\n  fleetauth token ci3 --format gitlab --vars cumulusci > org.env  # CUMULUSCI_ORG_CI3={...}, no token\n  fleetauth token ci3 --format docker > sf.env     # docker run --env-file sf.env ...\n  fleetauth token --list shard1/report.json --list shard2/report.json ci3   # a job after a sharded matrix\n\nExit codes: 0 printed, 1 the grant or --verify failed, 2 usage or unknown alias, 130 interrupted."
    )]
    Token(TokenArgs),
    /// Open one org in the browser through a single-use login link, or print the link.
    #[command(
        after_help = "A single-use link (/services/oauth2/singleaccess) starts one browser session, then is\ndead. The org's token is reused or granted exactly as `fleetauth token` does.\n\nExamples:\n  fleetauth open ci3                               # the browser opens the org\n  fleetauth open ci3 --path /lightning/setup/SetupOneHome/home\n  fleetauth open -o test-abc@example.com --url-only  # print the link, for a person\n  fleetauth open ci3 --json                        # {\"status\":0,\"result\":{orgId,username,url}}\n  fleetauth open ci3 --format github               # Actions: ::add-mask:: first\n  fleetauth open ci3 --list shard1/report.json --list shard2/report.json\n\nWhere no browser can be opened (CI, no DISPLAY, no xdg-open or open, $BROWSER failing),\nthe link is printed on stdout and stderr says so. The link is a credential until used:\nit goes to stdout only.\n\nExit codes: 0 opened or printed, 1 no link (the grant failed, the answer was refused, or stdout is closed),\n2 usage (nothing sent), 130 interrupted."
    )]
    Open(OpenArgs),
    /// Log in to one org (for example the Dev Hub) and write the Salesforce CLI's state, like `sf org login jwt`.
    Login(LoginArgs),
    /// Run the whole grant flow against the built-in emulator, in a temp dir.
    #[command(after_help = "Example:\n  fleetauth demo --orgs 100 --out-dir demo-out")]
    Demo(DemoArgs),
    /// Check the setup without sending anything: key, certificate, list, URLs, the claims to send.
    #[command(
        after_help = "Examples:\n  fleetauth check orgs.csv -i \"$CONSUMER_KEY\" -f server.key --cert server.crt\n  fleetauth check orgs.csv -i \"$CONSUMER_KEY\" -f server.key \\\n      -r https://login.salesforce.com --audience https://login.salesforce.com --online hub@acme.com"
    )]
    Check(CheckArgs),
    /// Write server.key and a self-signed server.crt for the Dev Hub's connected app.
    #[command(
        after_help = "Example:\n  fleetauth keygen --out-dir keys --common-name \"fleetauth CI\""
    )]
    Keygen(KeygenArgs),
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  fleetauth completions bash > /etc/bash_completion.d/fleetauth"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): the top-level one, or one command's (flags, exit codes, environment, examples).
    #[command(
        after_help = "Examples:\n  fleetauth man > /usr/local/share/man/man1/fleetauth.1\n  fleetauth man grant > /usr/local/share/man/man1/fleetauth-grant.1\n  for c in grant token check login keygen; do fleetauth man $c > fleetauth-$c.1; done"
    )]
    Man {
        /// The command whose page to print (grant, token, check, ...); without it, the top-level page.
        command: Option<String>,
    },
    /// Measure a fleet run against the emulator in its own process (wall time vs. the floor, CPU, memory).
    #[command(
        after_help = "Examples:\n  fleetauth bench --orgs 1000 --latency 100ms --concurrency 32 --rate 50\n  fleetauth bench --orgs 2000 --latency 0s --concurrency 64 --rate 100000\n  fleetauth bench --orgs 10000 --soak --concurrency 32 --rate 200"
    )]
    Bench(BenchArgs),
    /// Serve an emulated Salesforce token endpoint on 127.0.0.1 (for tests and trials).
    #[command(
        after_help = "Example:\n  fleetauth emulate --port 18443 --latency 100ms --fault 503=0.05 --dev-hub hub@example.com"
    )]
    Emulate(EmulateArgs),
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// The org lists: .csv or .json files (a report.json too), or `-` for standard input. Several
    /// lists are granted as one (the report.json of every shard); a username in two is one org.
    /// With -v and no list, the list is the Dev Hub's Active scratch orgs.
    #[arg(value_name = "ORGS", required_unless_present = "target_dev_hub")]
    pub orgs: Vec<PathBuf>,
    /// Force the lists' format instead of detecting it (every list, stdin included).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub hub_filter: HubFilterArgs,
    /// Token requests in flight at once.
    #[arg(long, default_value_t = crate::defaults::CONCURRENCY)]
    pub concurrency: usize,
    /// Token requests per second, retries included (bursts up to --concurrency).
    #[arg(long, default_value_t = crate::defaults::RATE)]
    pub rate: f64,
    /// Per-org time to wait out the replication delay (`user hasn't approved this consumer`).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub replication_timeout: Duration,
    /// Retries after a transient failure (5xx, 420, reset, timeout), per org.
    #[arg(long, default_value_t = crate::defaults::MAX_RETRIES)]
    pub max_retries: u32,
    /// Time limit of one token request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Skip orgs whose auth file in --out-dir is younger than this (resume a run).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub fresh_for: Duration,
    /// Grant every org, even those with a fresh auth file.
    #[arg(long)]
    pub force: bool,
    /// Take only share K of N of the list (a CI matrix job); the shares are disjoint and complete.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::plan::Shard>,
    /// Bound the whole run: when it passes, the run ends like an interruption (exit 130).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub deadline: Option<Duration>,
    /// Where the auth files, report.json and failed.csv go (created 0700).

    #[arg(long, default_value = crate::defaults::OUT_DIR)]
    pub out_dir: PathBuf,
    /// Write the report here instead of <out-dir>/report.json; a .csv path writes CSV.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Also write the run as Markdown here: counts, each failed org with its fix, replication waits.
    #[arg(long, value_name = "PATH")]
    pub summary_md: Option<PathBuf>,
    /// Also write the run as JUnit XML here: one testcase per org (GitLab and GitHub test reports).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Do not append the Markdown summary to $GITHUB_STEP_SUMMARY (done whenever it is set).
    #[arg(long)]
    pub no_step_summary: bool,
    /// No progress and no summary on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print {"status", "result": <report>, "warnings"} on stdout, and nothing else there.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub sf: SfArgs,
}

/// Hand the orgs to the Salesforce CLI.
#[derive(Debug, Args, Default)]
pub struct SfArgs {
    /// Also write each org into the Salesforce CLI's state (~/.sfdx), as `sf org login jwt` would.
    #[arg(long)]
    pub sf: bool,
    /// Use this directory instead of $HOME for the Salesforce CLI's state (implies --sf).
    #[arg(long, value_name = "DIR")]
    pub sf_home: Option<PathBuf>,
    /// Give the orgs the sf aliases P1..Pn by their place in the list, the same in every run and
    /// shard of it (besides the list's `alias` column).
    #[arg(long, value_name = "P")]
    pub alias_prefix: Option<String>,
    /// The Dev Hub the orgs came from, already authorized in sf: recorded so sf treats them as scratch orgs.
    #[arg(long, value_name = "USERNAME")]
    pub dev_hub_username: Option<String>,
    /// Re-point an sf alias that already names another username (by default it is left as it
    /// is, with a warning).
    #[arg(long = "sf-replace-aliases")]
    pub replace_aliases: bool,
}

/// `fleetauth token`: one org's access token on stdout.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The org: its username, or an alias from the out dir's auth files (or sf's alias.json with --sf).
    #[arg(value_name = "USERNAME|ALIAS", required_unless_present = "target_org")]
    pub org: Option<String>,
    /// The org, named as sf's `--target-org` names it (instead of the positional USERNAME|ALIAS).
    #[arg(
        short = 'o',
        long,
        value_name = "USERNAME|ALIAS",
        conflicts_with = "org"
    )]
    pub target_org: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub hub: HubArgs,
    /// Where the auth files are (and the new one goes).
    #[arg(long, default_value = "fleetauth-out")]
    pub out_dir: PathBuf,
    /// An org list to look the alias (and the org's instance URL) up in instead of the out dir's
    /// report.json: a report.json handed over by another job, or any list `grant` takes.
    /// Repeatable: the report.json of every shard, read as one (`-`: stdin, once).
    #[arg(long = "list", value_name = "FILE")]
    pub lists: Vec<PathBuf>,
    /// Reuse the org's auth file while it is younger than this (sessions last 2 h by default).
    #[arg(long, default_value = "90m", value_parser = humantime::parse_duration)]
    pub max_age: Duration,
    /// Check a reused token with one authenticated call; grant a new one if its session expired.
    #[arg(long)]
    pub verify: bool,
    /// What to print: the token alone, or the --vars for one reader: a shell or python-dotenv
    /// (dotenv), `docker run --env-file` (docker), GitLab's dotenv report (gitlab), $GITHUB_ENV (github).
    #[arg(long, value_enum, default_value = "token")]
    pub format: TokenFormat,
    /// Which variables the dotenv, docker, gitlab and github formats carry: sf's (the token
    /// included) or CumulusCI's secret-free org descriptor.
    #[arg(long, value_enum, default_value = "sf")]
    pub vars: TokenVars,
    /// Print {"status", "result", "warnings"} (the token included) on stdout instead.
    #[arg(long, conflicts_with_all = ["format", "vars"])]
    pub json: bool,
    /// Time limit of one request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Also resolve aliases through sf's alias.json, and write a new grant into sf's state (~/.sfdx).
    #[arg(long)]
    pub sf: bool,
    /// Use this directory instead of $HOME for the Salesforce CLI's state (implies --sf).
    #[arg(long, value_name = "DIR")]
    pub sf_home: Option<PathBuf>,
    /// The Dev Hub the org came from, already authorized in sf (recorded with a new grant).
    #[arg(long, value_name = "USERNAME")]
    pub dev_hub_username: Option<String>,
}

/// `fleetauth open`: a single-use login link to one org, for a person.
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The org: its username, or an alias from the out dir's auth files (or sf's alias.json with --sf).
    #[arg(value_name = "USERNAME|ALIAS", required_unless_present = "target_org")]
    pub org: Option<String>,
    /// The org, as sf's `org open` names the flag (instead of the positional argument).
    #[arg(
        short = 'o',
        long,
        value_name = "USERNAME|ALIAS",
        conflicts_with = "org"
    )]
    pub target_org: Option<String>,
    /// Where to land after the login: a path on the org, starting with `/` (no scheme, host,
    /// `//`, `..` or backslash, however encoded).
    #[arg(short = 'p', long, value_name = "/PATH")]
    pub path: Option<String>,
    /// Print the link on stdout instead of opening a browser.
    #[arg(long)]
    pub url_only: bool,
    /// How to print the link: alone, or for GitHub Actions (`::add-mask::` first; implies --url-only).
    #[arg(long, value_enum, default_value = "url")]
    pub format: OpenFormat,
    /// Print {"status", "result": {"orgId", "username", "url"}, "warnings"} on stdout (opens no browser).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Where the auth files are (and the new one goes).
    #[arg(long, default_value = "fleetauth-out")]
    pub out_dir: PathBuf,
    /// An org list to look the alias (and the org's instance URL) up in instead of the out dir's
    /// report.json: a report.json handed over by another job, or any list `grant` takes.
    /// Repeatable: the report.json of every shard, read as one (`-`: stdin, once).
    #[arg(long = "list", value_name = "FILE")]
    pub lists: Vec<PathBuf>,
    /// Reuse the org's auth file while it is younger than this (an expired session is granted anew).
    #[arg(long, default_value = "90m", value_parser = humantime::parse_duration)]
    pub max_age: Duration,
    /// Time limit of one request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Also resolve aliases through sf's alias.json, and write a new grant into sf's state (~/.sfdx).
    #[arg(long)]
    pub sf: bool,
    /// Use this directory instead of $HOME for the Salesforce CLI's state (implies --sf).
    #[arg(long, value_name = "DIR")]
    pub sf_home: Option<PathBuf>,
    /// The Dev Hub the org came from, already authorized in sf (recorded with a new grant).
    #[arg(long, value_name = "USERNAME")]
    pub dev_hub_username: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OpenFormat {
    /// The link and a newline.
    Url,
    /// `::add-mask::<link>`, then the link: the runner hides it in the log.
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenFormat {
    /// The access token and a newline.
    Token,
    /// NAME=value lines quoted for `set -a; . ./file` (sh, bash) and python-dotenv.
    Dotenv,
    /// NAME=value lines with the values as they are, for `docker run --env-file` (no quotes).
    Docker,
    /// NAME=value lines for GitLab's `artifacts:reports:dotenv` (which keeps quotes as written).
    Gitlab,
    /// The variables appended to $GITHUB_ENV (after `::add-mask::<token>` on stdout for sf's).
    Github,
    /// Short for `--format dotenv --vars cumulusci`.
    Cumulusci,
}

/// The variables an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenVars {
    /// SF_ACCESS_TOKEN, SF_ORG_INSTANCE_URL, SF_TARGET_ORG (the token, which sf takes as the
    /// target org) and SF_USERNAME.
    Sf,
    /// CUMULUSCI_ORG_<NAME>={"username":…,"instance_url":…[,"sandbox":true]}, without the token.
    Cumulusci,
}

impl TokenArgs {
    /// The org, from the positional argument or `-o/--target-org`.
    pub fn org(&self) -> &str {
        self.org
            .as_deref()
            .or(self.target_org.as_deref())
            .unwrap_or_default()
    }
}

/// `sf org login jwt`'s flags, for one org (for example the Dev Hub itself).
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  fleetauth login -o hub@acme.com -i \"$CONSUMER_KEY\" -f server.key -a hub -d"
)]
pub struct LoginArgs {
    /// The username to log in as.
    #[arg(short = 'o', long)]
    pub username: String,
    #[command(flatten)]
    pub key: KeyArgs,
    /// The login URL.
    #[arg(short = 'r', long, default_value = "https://login.salesforce.com")]
    pub instance_url: String,
    /// The assertion's `aud` (else $SF_AUDIENCE_URL, $SFDX_AUDIENCE_URL, or test/login by the
    /// login URL: https://test.salesforce.com for test, sandbox and scratch hosts).
    #[arg(long, env = "SF_AUDIENCE_URL", hide_env_values = true)]
    pub audience: Option<String>,
    /// An alias for the org.
    #[arg(short = 'a', long)]
    pub alias: Option<String>,
    /// Make it the default org (target-org).
    #[arg(short = 's', long)]
    pub set_default: bool,
    /// Make it the default Dev Hub (target-dev-hub).
    #[arg(short = 'd', long)]
    pub set_default_dev_hub: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Use this directory instead of $HOME for the Salesforce CLI's state.
    #[arg(long, value_name = "DIR")]
    pub sf_home: Option<PathBuf>,
    /// Time limit of one token request.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    #[command(flatten)]
    pub network: NetworkArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many scratch orgs to emulate (at most 1,000,000).
    #[arg(long, default_value_t = 40, value_parser = count(DEMO_ORGS_MAX))]
    pub orgs: usize,
    /// Longest emulated replication delay.
    #[arg(long, default_value = "6s", value_parser = humantime::parse_duration)]
    pub max_delay: Duration,
    /// Keep the output here instead of a temp dir that is removed afterwards.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

/// Who and where to grant: the connected app and its key, the token host, the audience, and
/// the network's trust.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    #[command(flatten)]
    pub key: KeyArgs,
    /// Token host: POST to <URL>/services/oauth2/token. A row's own instance URL is tried first.
    #[arg(short = 'r', long, default_value = crate::defaults::INSTANCE_URL)]
    pub instance_url: String,
    /// The assertion's `aud` (else $SFDX_AUDIENCE_URL, else https://test.salesforce.com).
    #[arg(long, env = "SF_AUDIENCE_URL", hide_env_values = true)]
    pub audience: Option<String>,
    #[command(flatten)]
    pub network: NetworkArgs,
}

/// Who signs: the connected app's consumer key and the private key of its certificate.
#[derive(Debug, Args, Clone, Default)]
pub struct KeyArgs {
    /// The connected app's consumer key.
    #[arg(short = 'i', long, env = "SFDX_CLIENT_ID", hide_env_values = true)]
    pub client_id: Option<String>,
    /// The Dev Hub's private key (PEM). Else $SFDX_HUB_KEY (PEM text) or $SFDX_HUB_KEY_BASE64.
    #[arg(short = 'f', long)]
    pub jwt_key_file: Option<PathBuf>,
    /// The environment variable holding the passphrase of an encrypted PKCS#8 key.
    #[arg(long, value_name = "VAR")]
    pub jwt_key_passphrase_env: Option<String>,
    /// The certificate uploaded to the connected app: check the key matches it before sending anything.
    #[arg(long, value_name = "server.crt")]
    pub cert: Option<PathBuf>,
}

/// What the network may reach and trust.
#[derive(Debug, Args, Clone, Default)]
pub struct NetworkArgs {
    /// Also let list rows and token answers name this host (repeatable; `*.acme.com` for a
    /// domain). Salesforce's own domains and loopback need no flag.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Trust the CA certificates in this PEM file too (repeatable), e.g. a TLS-inspecting
    /// proxy's. NODE_EXTRA_CA_CERTS, SSL_CERT_FILE and SSL_CERT_DIR are honoured as well.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,
}

/// The Dev Hub the orgs came from: asked before anything is sent for them.
#[derive(Debug, Args, Clone)]
pub struct HubArgs {
    /// The Dev Hub (username, or an sf alias with --sf): fleetauth grants it with the same key,
    /// reads its ScratchOrgInfo, and fails a listed org that is not its own, Deleted, in Error
    /// or expired before sending anything for it. With --sf it also fills devHubUsername.
    #[arg(
        short = 'v',
        long,
        env = "SF_TARGET_DEV_HUB",
        value_name = "HUB",
        help_heading = "Dev Hub"
    )]
    pub target_dev_hub: Option<String>,
    /// The Dev Hub's token host.
    #[arg(
        long,
        value_name = "URL",
        default_value = crate::hub::LOGIN,
        help_heading = "Dev Hub"
    )]
    pub hub_instance_url: String,
    /// The Dev Hub's assertion `aud` [default: https://login.salesforce.com].
    #[arg(long, value_name = "URL", help_heading = "Dev Hub")]
    pub hub_audience: Option<String>,
    /// Go on when the Dev Hub cannot be asked (a warning instead of exit 2); needs an org list.
    #[arg(long, help_heading = "Dev Hub")]
    pub no_hub_check: bool,
    /// Warn about orgs that expire within this window (they are still granted).
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration, help_heading = "Dev Hub")]
    pub warn_expiring: Duration,
}

/// Which of the Dev Hub's Active scratch orgs make the list when none is given.
#[derive(Debug, Args, Clone, Default)]
pub struct HubFilterArgs {
    /// Only orgs created at or after TIME: RFC 3339, a date, or an age (`24h`, `7days`).
    #[arg(
        long,
        value_name = "TIME",
        requires = "target_dev_hub",
        help_heading = "Dev Hub"
    )]
    pub created_after: Option<String>,
    /// Only orgs created by this user.
    #[arg(
        long,
        value_name = "USER",
        requires = "target_dev_hub",
        help_heading = "Dev Hub"
    )]
    pub created_by: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The org lists: .csv or .json files, or `-` for standard input, checked as `grant` reads
    /// them: several as one (with -v and no list: the Dev Hub's Active scratch orgs).
    #[arg(value_name = "ORGS", required_unless_present = "target_dev_hub")]
    pub orgs: Vec<PathBuf>,
    /// Force the lists' format instead of detecting it (every list, stdin included).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub hub: HubArgs,
    #[command(flatten)]
    pub hub_filter: HubFilterArgs,
    /// Check only share K of N of the list, as `grant --shard K/N` would take it.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<crate::plan::Shard>,
    /// Perform one real grant as this user and diagnose the answer.
    #[arg(long, value_name = "USERNAME")]
    pub online: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where server.key and server.crt go.
    #[arg(long, default_value = ".")]
    pub out_dir: PathBuf,
    /// Key size: 2048 or 4096.
    #[arg(long, default_value_t = 2048, value_parser = parse_bits)]
    pub bits: usize,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// The certificate's subject common name (CN), as the connected app shows it.
    #[arg(long, default_value = "fleetauth")]
    pub common_name: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many orgs (at most 10,000,000).
    #[arg(long, default_value_t = 1000, value_parser = count(BENCH_ORGS_MAX))]
    pub orgs: usize,
    /// The emulator's latency per answer.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Token requests in flight at once, as `grant --concurrency`.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Token requests per second, as `grant --rate`.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Inject every fault kind, replication delays and a login rate limit (the soak run).
    #[arg(long, conflicts_with = "emulator_url")]
    pub soak: bool,
    /// Use the emulator already running at URL (`fleetauth emulate`, started with the same
    /// --latency) instead of starting one as a child process. Its CPU is then not measured.
    #[arg(long, value_name = "URL")]
    pub emulator_url: Option<String>,
    /// Also hand every org to the Salesforce CLI's state (a home in the bench's temp dir), with
    /// the aliases `P1..Pn`: the cost of `grant --sf --alias-prefix P`.
    #[arg(long)]
    pub sf: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EmulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one; the URL is printed).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The certificate uploaded to the connected app (default: the demo certificate).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// The connected app's consumer key (default: the demo consumer key).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Known users: a CSV of `username[,replication delay]`. Without it every user is known.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Replication delay of users not given one in --users.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub delay: Duration,
    /// Added to every answer.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,
    /// Inject a fault with a probability, e.g. `--fault 503=0.05`. Kinds: 500, 503, 420, reset, truncated, slow.
    #[arg(long = "fault", value_name = "KIND=P")]
    pub faults: Vec<String>,
    /// How long a `slow` fault takes to answer.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub slow_delay: Duration,
    /// Token requests accepted per second; beyond it `login rate exceeded`.
    #[arg(long)]
    pub login_rate: Option<u32>,
    /// A Dev Hub user (repeatable): it can query ScratchOrgInfo and sees every scratch org.
    #[arg(long = "dev-hub", value_name = "USERNAME")]
    pub dev_hubs: Vec<String>,
    /// Give the Dev Hub N generated scratch orgs (ScratchOrgInfo rows): mostly Active, with a
    /// Deleted, an Error and an expired one among them. Without it: one Active org per user.
    /// At most 1,000,000.
    #[arg(long, value_name = "N", value_parser = count(HUB_ORGS_MAX))]
    pub hub_orgs: Option<usize>,
    /// The hub's app is an External Client App: scratch orgs answer `invalid_client_id`.
    #[arg(long)]
    pub eca_hub: bool,
}

/// The largest `bench --orgs`: its list and counters are sized from it.
pub const BENCH_ORGS_MAX: u64 = 10_000_000;
/// The largest `demo --orgs`: every org lives in the emulator's memory.
pub const DEMO_ORGS_MAX: u64 = 1_000_000;
/// The largest `emulate --hub-orgs`: every row is generated up front.
pub const HUB_ORGS_MAX: u64 = 1_000_000;

/// A count flag from 0 to `max`: a larger one is a usage error naming the range, not an
/// allocation that overflows.
fn count(max: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(0..=max)
}

fn parse_bits(s: &str) -> Result<usize, String> {
    match s {
        "2048" => Ok(2048),
        "4096" => Ok(4096),
        _ => Err("use 2048 or 4096".into()),
    }
}

/// A command line clap rejected: its message on stderr, and with `--json` the same envelope
/// as any other setup error on stdout, so a pipeline reading stdout is never left empty.
pub fn usage_error(e: clap::Error) -> crate::exit::Exit {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return crate::exit::Exit::Success;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return crate::exit::Exit::Usage;
        }
        _ => {}
    }
    // clap quotes the offending argument: key text pasted as a value is not shown.
    let text = e.to_string();
    let text = crate::sanitize::without_key_material(&text);
    crate::say::err_raw(&text);
    if std::env::args_os().any(|a| a == "--json") {
        let message = text
            .lines()
            .next()
            .unwrap_or("usage error")
            .trim_start_matches("error: ");
        let _ = crate::finish::print_json(&crate::finish::error_envelope(
            crate::exit::Exit::Usage,
            "UsageError",
            message,
            &[],
        ));
    }
    crate::exit::Exit::Usage
}
