//! Helpers for the integration tests: an emulator in the test's runtime, a temp workspace
//! with the test key and an org list, and the real `fleetauth` binary run against them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub use fleetauth::emulator::EmulatorHandle;
use fleetauth::emulator::{self, test_keys, EmulatorConfig, User};
use tokio::io::AsyncWriteExt;

pub mod python;
pub mod readers;
pub mod schema;
pub mod sf;

pub const CLIENT_ID: &str = test_keys::CLIENT_ID;

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path)
}

/// An emulator config for the test key, knowing `users` (no replication delay).
pub fn config<S: AsRef<str>>(users: &[S]) -> EmulatorConfig {
    let mut config = EmulatorConfig::new(test_keys::CERTIFICATE.as_bytes().to_vec(), CLIENT_ID);
    config.users = users
        .iter()
        .map(|u| (u.as_ref().to_string(), User::default()))
        .collect();
    config
}

pub async fn start(config: EmulatorConfig) -> EmulatorHandle {
    emulator::start(config, 0)
        .await
        .expect("the emulator starts")
}

/// An emulator config whose Dev Hub `hub` created `orgs` (every user known, no delay).
pub fn hub_config(hub: &str, orgs: Vec<emulator::ScratchOrg>) -> EmulatorConfig {
    let mut config = empty_config();
    config.any_user = Some(Duration::ZERO);
    config.users.insert(
        hub.to_string(),
        User {
            dev_hub: true,
            ..User::default()
        },
    );
    config.scratch_orgs = orgs;
    config
}

/// An emulator config for the test key that knows no user yet.
pub fn empty_config() -> EmulatorConfig {
    config::<&str>(&[])
}

/// `n` usernames like `test-<prefix><i>@example.com`.
pub fn usernames(prefix: &str, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("test-{prefix}{i}@example.com"))
        .collect()
}

/// A temp dir with the test key, an org list and room for the output.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub key: PathBuf,
    pub list: PathBuf,
    pub out: PathBuf,
}

impl Workspace {
    pub fn new(list_name: &str, list: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("server.key");
        std::fs::write(&key, test_keys::PRIVATE_KEY).expect("write key");
        let list_path = dir.path().join(list_name);
        std::fs::write(&list_path, list).expect("write list");
        let out = dir.path().join("out");
        Self {
            dir,
            key,
            list: list_path,
            out,
        }
    }

    pub fn with_users(users: &[String]) -> Self {
        Self::new("orgs.csv", &(users.join("\n") + "\n"))
    }

    /// `grant <list> -i <client> -f <key> -r <emulator> --out-dir <out>` plus `extra`.
    pub fn grant_args(&self, emu: &EmulatorHandle, extra: &[&str]) -> Vec<String> {
        self.grant_args_to(&emu.url(), extra)
    }

    /// [`Workspace::grant_args`] against any token host URL.
    pub fn grant_args_to(&self, url: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "grant".into(),
            self.list.display().to_string(),
            "-i".into(),
            CLIENT_ID.into(),
            "-f".into(),
            self.key.display().to_string(),
            "-r".into(),
            url.into(),
            "--out-dir".into(),
            self.out.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// `token <org> -i <client> -f <key> -r <emulator> --out-dir <out>` plus `extra`.
    pub fn token_args(&self, emu: &EmulatorHandle, org: &str, extra: &[&str]) -> Vec<String> {
        let mut args = self.grant_args(emu, extra);
        args[0] = "token".into();
        args[1] = org.into();
        args
    }

    /// The access token in `username`'s auth file in the out dir.
    pub fn auth_token(&self, username: &str) -> String {
        // Named in lower case, as sf looks an org up.
        let path = self.out.join(format!("{}.json", username.to_lowercase()));
        let text = std::fs::read_to_string(&path).expect("the auth file exists");
        let file: serde_json::Value = serde_json::from_str(&text).expect("the auth file is JSON");
        file["accessToken"]
            .as_str()
            .expect("accessToken is a string")
            .to_string()
    }

    pub fn report(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.out.join("report.json")).expect("report.json exists");
        serde_json::from_str(&text).expect("report.json is JSON")
    }

    pub fn auth_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_name().is_some_and(|n| n != "report.json")
        });
        files.sort();
        files
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The real binary's path, for tests that pack or copy it (run it only through [`fleetauth`]).
pub fn fleetauth_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fleetauth"))
}

/// The only variable a child of the suite takes from the caller's environment: where programs
/// are. Everything else (GITHUB_*, HTTPS_PROXY, SF_*, SFDX_*, SSL_CERT_FILE, ...) is cleared.
const FROM_CALLER: &[&str] = &["PATH"];

/// `program` with a scrubbed environment: the caller's is cleared, then only `PATH`, `HOME` and
/// `TMPDIR` (both `home`, a dir of the test's own) and what every run needs
/// (`SF_USE_GENERIC_UNIX_KEYCHAIN`) are set. Every child process the suite starts is built here
/// (the binary, `sf`, `npm`), so a CI runner's variables change nothing and nothing is written
/// outside the test's temp dir. A test adds what it needs with `.env(...)`.
pub fn scrubbed(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.env_clear();
    for name in FROM_CALLER {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.env("HOME", home)
        .env("TMPDIR", home)
        .env("SF_USE_GENERIC_UNIX_KEYCHAIN", "true");
    cmd
}

/// The real binary with `args`, through [`scrubbed`], with `HOME` in `home`; stdin, stdout and
/// stderr are the caller's to set. Killed when dropped.
pub fn fleetauth_command(args: &[String], home: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::from(scrubbed(env!("CARGO_BIN_EXE_fleetauth"), home));
    cmd.args(args).kill_on_drop(true);
    cmd
}

impl Workspace {
    /// `HOME` for the binaries this workspace's test starts (created on first use).
    pub fn home(&self) -> PathBuf {
        let home = self.dir.path().join("test-home");
        std::fs::create_dir_all(&home).expect("create the test's HOME");
        home
    }

    /// [`fleetauth_command`] with `HOME` inside this workspace.
    pub fn command(&self, args: &[String]) -> tokio::process::Command {
        fleetauth_command(args, &self.home())
    }
}

/// Send `signal` (e.g. `libc::SIGINT`) to the process `pid`, without starting a `kill` process.
pub fn signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).expect("a pid fits in pid_t");
    // SAFETY: kill(2) only reads its two integer arguments.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        sent,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// Whether the process `pid` has a handler for `signal` installed (Linux: `SigCgt` in
/// `/proc/<pid>/status`), i.e. a signal now is handled, not fatal.
pub fn catches(pid: u32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// Wait (up to a minute) until `ready` holds, checking every 20 ms: tests wait on an event (an
/// emulator counter, a file, a line), never on a guessed sleep.
pub async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited a minute for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Read `stderr` line by line until a line contains `needle`; the lines read so far (the rest
/// of the stream is drained in the background into the returned handle).
pub async fn stderr_until(
    stderr: tokio::process::ChildStderr,
    needle: &str,
) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut seen = String::new();
    let found = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "stderr never said {needle:?}: {seen}");
    let rest = tokio::spawn(async move {
        let mut rest = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    (seen, rest)
}

/// Run the real binary with `args` (and `stdin`) in a scrubbed environment ([`scrubbed`]) with
/// a fresh temp `HOME`.
pub async fn fleetauth(args: &[String], stdin: Option<&str>) -> Run {
    fleetauth_env(args, stdin, &[]).await
}

/// The real binary with `args` through [`scrubbed`] (a temp `HOME` of its own, kept), its
/// output piped and killed on drop. For tests that need the child itself (signals, limits, an
/// open stdin); the others use [`fleetauth`].
pub fn command<I, S>(args: I) -> tokio::process::Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let home = tempfile::tempdir().expect("a temp HOME").keep();
    let mut cmd = tokio::process::Command::from(scrubbed(env!("CARGO_BIN_EXE_fleetauth"), &home));
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// [`fleetauth`] with extra environment variables (a `HOME` among them replaces the temp one).
pub async fn fleetauth_env(args: &[String], stdin: Option<&str>, envs: &[(&str, &str)]) -> Run {
    fleetauth_in(None, args, stdin, envs).await
}

/// Wait for a child started from [`command`] (at most 3 minutes) and collect its output.
pub async fn finish(child: tokio::process::Child) -> Run {
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("fleetauth finished within 3 minutes")
        .expect("fleetauth ran");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`fleetauth_env`] in the working directory `cwd` (else the test's own).
pub async fn fleetauth_in(
    cwd: Option<&Path>,
    args: &[String],
    stdin: Option<&str>,
    envs: &[(&str, &str)],
) -> Run {
    let home = tempfile::tempdir().expect("a temp HOME");
    let mut cmd = fleetauth_command(args, home.path());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd.envs(envs.iter().copied());
    let mut child = cmd.spawn().expect("the binary runs");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("fleetauth finished within 3 minutes")
        .expect("fleetauth ran");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An HTTP client for the test's own requests to the emulator: fleetauth's trust store, built
/// from an empty environment and with no proxy, so the caller's `HTTPS_PROXY` or
/// `SSL_CERT_FILE` (which reqwest and the trust store would read) change nothing in-process.
pub fn http() -> reqwest::Client {
    fleetauth::tls::Network::new(&[], Default::default(), &|_| None)
        .expect("the default trust store loads")
        .builder(Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("a client")
}

/// Grants per user from the emulator's counters.
pub fn grants(emu: &EmulatorHandle) -> HashMap<String, u64> {
    emu.stats.snapshot().grants
}

/// Set the value that follows `flag` in `args` (e.g. `-f` → another key file).
pub fn set_flag(args: &mut [String], flag: &str, value: impl Into<String>) {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} is in the args"));
    args[i + 1] = value.into();
}

/// Remove `flag` and its value from `args`.
pub fn drop_flag(args: &mut Vec<String>, flag: &str) {
    let i = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} is in the args"));
    args.drain(i..i + 2);
}

/// A token host that answers every request with one fixed raw answer, and counts requests.
pub struct FakeEndpoint {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serve `status`, `headers` and `body` to every request on 127.0.0.1.
pub async fn fake_endpoint(status: u16, headers: &[(&str, &str)], body: Vec<u8>) -> FakeEndpoint {
    use std::sync::atomic::Ordering;
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut head = format!(
        "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut answer = head.into_bytes();
    answer.extend_from_slice(&body);
    let answer = std::sync::Arc::new(answer);
    let counter = std::sync::Arc::clone(&requests);
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let (answer, counter) = (
                std::sync::Arc::clone(&answer),
                std::sync::Arc::clone(&counter),
            );
            tokio::spawn(async move {
                // Read the head and the body the Content-Length announces, then answer.
                let mut buf = Vec::new();
                let mut chunk = [0_u8; 8192];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    FakeEndpoint {
        url,
        requests,
        task,
    }
}

impl FakeEndpoint {
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An HTTP CONNECT proxy on 127.0.0.1 that counts tunnels and keeps each
/// `Proxy-Authorization` it was sent.
pub struct ConnectProxy {
    pub url: String,
    pub tunnels: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pub authorizations: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn connect_proxy() -> ConnectProxy {
    use std::sync::atomic::Ordering;
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let tunnels = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let authorizations = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (t, a) = (
        std::sync::Arc::clone(&tunnels),
        std::sync::Arc::clone(&authorizations),
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let (t, a) = (std::sync::Arc::clone(&t), std::sync::Arc::clone(&a));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut byte = [0_u8; 1];
                while !buf.ends_with(b"\r\n\r\n") {
                    match client.read(&mut byte).await {
                        Ok(1) => buf.push(byte[0]),
                        _ => return,
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut lines = head.lines();
                let request = lines.next().unwrap_or_default().to_string();
                let Some(target) = request
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split_whitespace().next())
                else {
                    let _ = client
                        .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                        .await;
                    return;
                };
                for line in lines {
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("proxy-authorization") {
                            a.lock().unwrap().push(v.trim().to_string());
                        }
                    }
                }
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    return;
                };
                t.fetch_add(1, Ordering::SeqCst);
                if client
                    .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    ConnectProxy {
        url,
        tunnels,
        authorizations,
        task,
    }
}

impl ConnectProxy {
    pub fn tunnels(&self) -> usize {
        self.tunnels.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A test CA and a certificate for 127.0.0.1 signed by it: (CA PEM, server identity).
pub fn test_ca() -> (String, fleetauth::emulator::TlsIdentity) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "fleetauth test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    (
        ca_cert.pem(),
        fleetauth::emulator::TlsIdentity {
            cert_chain_pem: leaf_cert.pem(),
            key_pem: leaf_key.serialize_pem(),
        },
    )
}

/// Every byte of every token the emulator issued, and the proxy password, absent from `seen`.
pub fn assert_no_secret(seen: &str, tokens: &[String]) {
    for token in tokens {
        assert!(!seen.contains(token.as_str()), "an access token leaked");
        if let Some((_, secret)) = token.split_once('!') {
            assert!(!seen.contains(secret), "part of an access token leaked");
        }
    }
    assert!(!seen.contains("eyJ"), "an assertion (JWT) leaked");
}

impl Workspace {
    /// `open <org> -i <client> -f <key> -r <emulator> --out-dir <out>` plus `extra`.
    pub fn open_args(&self, emu: &EmulatorHandle, org: &str, extra: &[&str]) -> Vec<String> {
        let mut args = self.token_args(emu, org, extra);
        args[0] = "open".into();
        args
    }

    /// Every file under the workspace (the out dir, a HOME inside it), recursively.
    pub fn all_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, files);
                } else {
                    files.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(self.dir.path(), &mut files);
        files
    }
}

/// [`fleetauth_env`] on a machine with no browser to open: no display, no `$BROWSER`, not CI
/// and not GitHub Actions (whatever the caller's environment says), then `envs`.
pub async fn fleetauth_headless(args: &[String], envs: &[(&str, &str)]) -> Run {
    let mut all = vec![
        ("DISPLAY", ""),
        ("WAYLAND_DISPLAY", ""),
        ("BROWSER", ""),
        ("CI", ""),
        ("GITHUB_ACTIONS", ""),
    ];
    all.extend_from_slice(envs);
    fleetauth_env(args, None, &all).await
}

/// One `GET` of `url` (plain http on 127.0.0.1), without following a redirect:
/// (status, the `Location` header, the body).
pub async fn http_get(url: &str) -> (u16, Option<String>, String) {
    use tokio::io::AsyncReadExt;
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    let target = if target.is_empty() { "/" } else { target };
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let location = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("location")
            .then(|| v.trim().to_string())
    });
    (status, location, body.to_string())
}
