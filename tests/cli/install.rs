//! The release path: `.github/release/package.sh` packs the real binary, and
//! `.github/release/install.sh` installs it from a local server laid out like GitHub's releases
//! (`download/vX.Y.Z/...`, and `latest/download/...` redirecting there). Every script runs with a
//! cleared environment: HOME in the test's temp dir and a PATH of only the tools it may use.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".github/release")
        .join(name)
}

/// The target install.sh picks on this machine (musl on Linux).
fn host_target() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" => format!("{arch}-unknown-linux-musl"),
        "macos" => format!("{arch}-apple-darwin"),
        os => panic!("install.sh publishes no build for {os}"),
    }
}

/// The basic tools every script here uses, and the downloaders and checksum tools they choose from.
const BASE_TOOLS: &[&str] = &[
    "sh", "uname", "mkdir", "rm", "mv", "cp", "chmod", "cat", "sed", "tr", "tail", "mktemp", "tar",
    "gzip", "grep", "dirname", "printf",
];

/// A directory of symlinks to `tools` (found on the usual system paths): the whole PATH a script
/// gets. A tool missing from the machine fails the test.
fn tool_dir(parent: &Path, name: &str, tools: &[&str]) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for tool in BASE_TOOLS.iter().chain(tools) {
        let found = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("the install tests need `{tool}` on this machine"));
        let link = dir.join(tool);
        if !link.exists() {
            std::os::unix::fs::symlink(found, link).unwrap();
        }
    }
    dir
}

struct Script {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Run `bash|sh script args` with only `envs`, HOME and PATH.
async fn run_script(
    shell: &str,
    script: &Path,
    args: &[&str],
    home: &Path,
    path: &Path,
    envs: &[(&str, &str)],
) -> Script {
    let mut cmd = tokio::process::Command::new(path.join(shell));
    cmd.arg(script)
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", path)
        .env("TMPDIR", home)
        .envs(envs.iter().copied())
        .current_dir(home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("the script finished within 5 minutes")
        .expect("the script ran");
    Script {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A static file server on 127.0.0.1 over `root`; `latest/download/X` redirects (302) to
/// `download/v<latest>/X` as GitHub's does. It keeps every request path.
struct Releases {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Releases {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Releases {
    async fn serve(root: PathBuf, latest: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (seen, latest, root) = (Arc::clone(&requests), latest.to_string(), Arc::new(root));
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, latest, root) = (Arc::clone(&seen), latest.clone(), Arc::clone(&root));
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0_u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let path = head
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_string();
                    seen.lock().unwrap().push(path.clone());
                    let answer = answer(&root, &latest, &path);
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self {
            url,
            requests,
            task,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(root: &Path, latest: &str, path: &str) -> Vec<u8> {
    let respond = |status: &str, extra: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    if let Some(file) = path.strip_prefix("/latest/download/") {
        let location = format!("Location: /download/v{latest}/{file}\r\n");
        return respond("302 Found", &location, b"");
    }
    let relative = path.trim_start_matches('/');
    if relative
        .split('/')
        .any(|part| part == ".." || part.is_empty())
    {
        return respond("404 Not Found", "", b"Not Found");
    }
    match std::fs::read(root.join(relative)) {
        Ok(body) => respond("200 OK", "", &body),
        Err(_) => respond("404 Not Found", "", b"Not Found"),
    }
}

/// A temp dir with a release of the real binary for `target` packed by package.sh and laid out as
/// `releases/download/v<VERSION>/`, served on 127.0.0.1 (latest = VERSION).
struct Mirror {
    dir: tempfile::TempDir,
    releases: Releases,
    archive: PathBuf,
}

/// package.sh run once per test process over the real binary, for the host's install target:
/// `<CARGO_TARGET_TMPDIR>/install-release/` with the archive and its checksum.
fn packed_release() -> &'static Path {
    static PACKED: OnceLock<PathBuf> = OnceLock::new();
    PACKED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install-release");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tools = tool_dir(&dir, "tools", &["bash", "sha256sum", "git"]);
        let out = dir.join("out");
        let packed = std::process::Command::new(tools.join("bash"))
            .arg(script("package.sh"))
            .args([out.to_str().unwrap(), &host_target()])
            .env_clear()
            .env("HOME", &dir)
            .env("PATH", &tools)
            .env("TMPDIR", &dir)
            .env("FLEETAUTH_PACKAGE_BINARY", fleetauth_bin())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .stdin(Stdio::null())
            .output()
            .expect("package.sh runs");
        let stderr = String::from_utf8_lossy(&packed.stderr);
        assert!(packed.status.success(), "package.sh failed: {stderr}");
        let archive = out.join(format!("fleetauth-{}.tar.gz", host_target()));
        assert_eq!(
            String::from_utf8_lossy(&packed.stdout)
                .lines()
                .collect::<Vec<_>>(),
            [
                archive.display().to_string(),
                format!("{}.sha256", archive.display())
            ],
            "package.sh prints the archive and its checksum"
        );
        out
    })
}

impl Mirror {
    /// A copy of [`packed_release`] as `releases/download/v<VERSION>/`, served.
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let release_dir = dir
            .path()
            .join("releases/download")
            .join(format!("v{VERSION}"));
        std::fs::create_dir_all(&release_dir).unwrap();
        for entry in std::fs::read_dir(packed_release()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, release_dir.join(path.file_name().unwrap())).unwrap();
        }
        let archive = release_dir.join(format!("fleetauth-{}.tar.gz", host_target()));
        let releases = Releases::serve(dir.path().join("releases"), VERSION).await;
        Self {
            dir,
            releases,
            archive,
        }
    }

    fn home(&self) -> PathBuf {
        let home = self.dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        home
    }

    /// install.sh `args` with FLEETAUTH_RELEASES_URL at this mirror, curl and sha256sum on PATH.
    async fn install(&self, args: &[&str], envs: &[(&str, &str)]) -> Script {
        let tools = tool_dir(self.dir.path(), "tools", &["curl", "sha256sum"]);
        self.install_with(&tools, args, envs).await
    }

    async fn install_with(&self, tools: &Path, args: &[&str], envs: &[(&str, &str)]) -> Script {
        let base = format!("{}/", self.releases.url);
        let mut all = vec![("FLEETAUTH_RELEASES_URL", base.as_str())];
        all.extend_from_slice(envs);
        run_script("sh", &script("install.sh"), args, &self.home(), tools, &all).await
    }
}

fn assert_installed(binary: &Path, run: &Script) {
    assert_eq!(run.code, 0, "install.sh failed: {}", run.stderr);
    let installed = std::fs::read(binary).expect("the binary is installed");
    assert!(
        installed == std::fs::read(fleetauth_bin()).unwrap(),
        "the installed binary is the packed one"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(binary).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    assert!(
        run.stdout
            .starts_with(&format!("installed fleetauth {VERSION} (")),
        "it says what it installed: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .trim_end()
            .ends_with(&format!(" to {}", binary.display())),
        "it says where: {}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn package_sh_packs_the_binary_readme_and_license_with_a_checksum_sha256sum_accepts() {
    let mirror = Mirror::new().await;
    let target = host_target();
    let names = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&mirror.archive)
        .output()
        .expect("tar runs");
    let mut names: Vec<String> = String::from_utf8_lossy(&names.stdout)
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["/", "/LICENSE", "/README.md", "/fleetauth"].map(|n| format!("fleetauth-{target}{n}"))
    );
    let check = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg(format!("fleetauth-{target}.tar.gz.sha256"))
        .current_dir(mirror.archive.parent().unwrap())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("sha256sum runs");
    assert!(
        check.status.success()
            && String::from_utf8_lossy(&check.stdout)
                .contains(&format!("fleetauth-{target}.tar.gz: OK")),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn installs_a_pinned_release_then_the_latest_into_the_default_dir() {
    let target = host_target();
    let mirror = Mirror::new().await;
    let pinned = mirror.home().join("pinned");
    let run = mirror
        .install(
            &["--version", VERSION, "--to", pinned.to_str().unwrap()],
            &[],
        )
        .await;
    assert_installed(&pinned.join("fleetauth"), &run);
    let archive = format!("fleetauth-{target}.tar.gz");
    assert_eq!(
        mirror.releases.requests(),
        [
            format!("/download/v{VERSION}/{archive}"),
            format!("/download/v{VERSION}/{archive}.sha256"),
        ]
    );

    // No version: the latest release, through GitHub's redirect, into ~/.local/bin.
    let run = mirror.install(&[], &[]).await;
    assert_installed(&mirror.home().join(".local/bin/fleetauth"), &run);
    let requests = mirror.releases.requests();
    assert_eq!(
        requests[2..],
        [
            format!("/latest/download/{archive}"),
            format!("/download/v{VERSION}/{archive}"),
            format!("/latest/download/{archive}.sha256"),
            format!("/download/v{VERSION}/{archive}.sha256"),
        ]
    );
    assert!(
        run.stderr.contains(".local/bin is not on PATH"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fleetauth_version_v_prefix_and_wget_with_shasum_install_too() {
    let target = host_target();
    let mirror = Mirror::new().await;
    // No curl and no sha256sum: the fallbacks macOS and small images have.
    let tools = tool_dir(mirror.dir.path(), "wget-tools", &["wget", "shasum", "perl"]);
    let to = mirror.home().join("bin");
    let run = mirror
        .install_with(
            &tools,
            &["--to", to.to_str().unwrap()],
            &[("FLEETAUTH_VERSION", &format!("v{VERSION}"))],
        )
        .await;
    assert_installed(&to.join("fleetauth"), &run);
    assert_eq!(
        mirror.releases.requests()[0],
        format!("/download/v{VERSION}/fleetauth-{target}.tar.gz")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_archive_is_refused_and_nothing_is_installed() {
    let target = host_target();
    let mirror = Mirror::new().await;
    let mut bytes = std::fs::read(&mirror.archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&mirror.archive, bytes).unwrap();
    let to = mirror.home().join("bin");
    std::fs::create_dir_all(&to).unwrap();
    std::fs::write(to.join("fleetauth"), "the old one").unwrap();

    let run = mirror
        .install(&["--version", VERSION, "--to", to.to_str().unwrap()], &[])
        .await;
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains(&format!("checksum mismatch for fleetauth-{target}.tar.gz"))
            && run.stderr.contains("nothing installed"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(to.join("fleetauth")).unwrap(),
        "the old one"
    );
    let left: Vec<_> = std::fs::read_dir(&to).unwrap().collect();
    assert_eq!(left.len(), 1, "no partial file is left in {}", to.display());
    assert_eq!(run.stdout, "", "nothing is reported installed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_that_does_not_exist_is_a_404_naming_version_and_target() {
    let target = host_target();
    let mirror = Mirror::new().await;
    let to = mirror.home().join("bin");
    let run = mirror
        .install(&["--version", "9.9.9", "--to", to.to_str().unwrap()], &[])
        .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("HTTP 404")
            && run.stderr.contains("release v9.9.9")
            && run.stderr.contains(&format!("'{target}'")),
        "{}",
        run.stderr
    );
    assert!(!to.exists(), "nothing is created on a failed install");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unpublished_target_is_an_error_naming_it_and_the_published_ones() {
    let mirror = Mirror::new().await;
    let to = mirror.home().join("bin");
    let run = mirror
        .install(
            &[
                "--target",
                "riscv64gc-unknown-linux-gnu",
                "--to",
                to.to_str().unwrap(),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("publishes no build for 'riscv64gc-unknown-linux-gnu'")
            && run.stderr.contains("HTTP 404")
            && run
                .stderr
                .contains("x86_64-unknown-linux-musl aarch64-unknown-linux-musl"),
        "{}",
        run.stderr
    );
    assert!(!to.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_missing_tools_fail_before_any_download() {
    let mirror = Mirror::new().await;
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--version", "../../etc"],
            "is not a version like 1.2.3",
        ),
        (vec!["--target", "x86_64/../../x"], "is not a target triple"),
        (vec!["--to"], "--to needs a value"),
        (vec!["--bogus"], "unknown argument '--bogus'"),
    ];
    for (args, message) in cases {
        let run = mirror.install(&args, &[]).await;
        assert_eq!(run.code, 1, "{args:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    // Neither curl nor wget.
    let bare = tool_dir(mirror.dir.path(), "bare-tools", &["sha256sum"]);
    let run = mirror.install_with(&bare, &[], &[]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("neither curl nor wget is installed"),
        "{}",
        run.stderr
    );
    // The repository's own copy names no release repository: it asks for a URL, fetching nothing.
    let tools = tool_dir(mirror.dir.path(), "tools", &["curl", "sha256sum"]);
    let run = run_script(
        "sh",
        &script("install.sh"),
        &[],
        &mirror.home(),
        &tools,
        &[],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("set FLEETAUTH_RELEASES_URL="),
        "{}",
        run.stderr
    );
    assert_eq!(mirror.releases.requests(), Vec::<String>::new());
    assert!(!mirror.home().join(".local").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn version_prints_the_version_second_then_target_and_commit() {
    let run = fleetauth(&["--version".to_string()], None).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first = run.stdout.lines().next().unwrap_or_default();
    let words: Vec<&str> = first.split(' ').collect();
    assert_eq!(words.len(), 4, "fleetauth X.Y.Z (TARGET, COMMIT): {first}");
    assert_eq!(words[..2], ["fleetauth", VERSION]);
    let target = words[2]
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(','))
        .unwrap_or_else(|| panic!("({first}"));
    assert!(
        target.starts_with(std::env::consts::ARCH) && target.split('-').count() >= 3,
        "a target triple: {target}"
    );
    let commit = words[3].strip_suffix(')').expect("closed by )");
    assert!(
        commit == "unknown"
            || (!commit.is_empty() && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "a commit or \"unknown\": {commit}"
    );
}
