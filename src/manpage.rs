//! `fleetauth man [COMMAND]`: a man page per command, rendered from the same clap definitions
//! as `--help` (name, synopsis, description, options, examples), plus the sections a man page
//! reader expects and `--help` leaves out: exit status, environment, see also.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;

/// The exit codes every command shares (the contract in `exit.rs`).
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success: every org authorized or skipped (grant), the token printed (token), the link opened or printed (open), the setup is ready (check)."),
    ("1", "The run finished and some orgs failed, or a grant or --verify failed, or no login link came (open); the report or stderr says why."),
    ("2", "Usage, configuration or input error, found before anything was sent (check: the setup is not ready)."),
    ("130", "Interrupted by SIGINT, SIGTERM or --deadline; the report lists the pending orgs."),
];

/// How several org lists are read as one, for the commands that take them.
const SEVERAL_LISTS: (&[&str], &str) = (
    &["grant", "check", "token", "open"],
    "grant and check take several lists (fleetauth grant a.csv b.json), token and open several --list FILE; the report.json of every shard of a --shard K/N matrix combine this way. The rows of every list are planned together, in the order given, and --shard takes its share after they are merged. A username in two lists (in any case) is one org: a cell given in both must be the same (a different alias, instance URL or other column is an input error, exit 2, naming both files and lines), and one blank in the first list is taken from the other. An alias names one org across every list. Every message names the file and line (or entry) of the row. - (standard input) may be one of the lists, once. failed.csv keeps the lists' columns when they are the same, else has username, alias, instanceUrl and every other column, and is a list grant reads back.",
);

/// The environment variables fleetauth reads, with the commands that read them.
const ENVIRONMENT: &[(&str, &str, &[&str])] = &[
    (
        "SFDX_CLIENT_ID",
        "The connected app's consumer key (--client-id).",
        &["grant", "token", "open", "check", "login"],
    ),
    (
        "SFDX_HUB_KEY",
        "The private key as PEM text (when --jwt-key-file is not given).",
        &["grant", "token", "open", "check", "login"],
    ),
    (
        "SFDX_HUB_KEY_BASE64",
        "The private key as base64 of the PEM file.",
        &["grant", "token", "open", "check", "login"],
    ),
    (
        "SF_AUDIENCE_URL, SFDX_AUDIENCE_URL",
        "The assertion's aud (--audience); SF_AUDIENCE_URL wins when both are set.",
        &["grant", "token", "open", "check", "login"],
    ),
    (
        "HTTPS_PROXY, https_proxy, ALL_PROXY, NO_PROXY",
        "The proxy and its exceptions; credentials in the URL are used and never printed.",
        &["grant", "token", "open", "check", "login"],
    ),
    (
        "SSL_CERT_FILE, SSL_CERT_DIR",
        "Replace the platform's certificate store, as for OpenSSL.",
        &["grant", "token", "open", "check", "login"],
    ),
    (
        "NODE_EXTRA_CA_CERTS",
        "Extra CA certificates to trust, as for sf.",
        &["grant", "token", "open", "check", "login"],
    ),
    (
        "GITHUB_STEP_SUMMARY",
        "Where the Markdown summary is appended (unless --no-step-summary).",
        &["grant"],
    ),
    (
        "GITHUB_ENV",
        "The runner's file that --format github appends the variables to; it must exist.",
        &["token"],
    ),
    (
        "BROWSER",
        "The browser to open the login link with (colon-separated commands, %s for the link).",
        &["open"],
    ),
    (
        "DISPLAY, WAYLAND_DISPLAY",
        "Without either (and without $BROWSER), no browser is opened: the link is printed.",
        &["open"],
    ),
    (
        "CI",
        "When set (not 0 or false), no browser is opened: the link is printed.",
        &["open"],
    ),
    (
        "GITHUB_ACTIONS",
        "When true, a link printed unmasked comes with a warning to use --format github.",
        &["open"],
    ),
    (
        "HOME",
        "The Salesforce CLI's state lives in $HOME/.sfdx and $HOME/.sf (unless --sf-home).",
        &["grant", "token", "open", "login"],
    ),
    (
        "SF_USE_GENERIC_UNIX_KEYCHAIN, SFDX_USE_GENERIC_UNIX_KEYCHAIN",
        "Keep sf's encryption key in ~/.sfdx/key.json instead of the OS keychain, as sf does.",
        &["grant", "token", "open", "login"],
    ),
];

/// Render the page of `command` (the top-level page when `None`) to `out`.
pub fn render(command: Option<&str>, out: &mut dyn Write) -> Result<(), String> {
    let top = Cli::command();
    let names: Vec<String> = top
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    let (cmd, name) = match command {
        None => (top.clone(), None),
        Some(wanted) => {
            let sub = top
                .find_subcommand(wanted)
                .ok_or_else(|| {
                    format!(
                        "no command `{wanted}`: man pages exist for {}",
                        names.join(", ")
                    )
                })?
                .clone();
            // The page's title and synopsis name the command as it is typed.
            let full = format!("fleetauth-{wanted}");
            (
                sub.name(full.clone())
                    .bin_name(format!("fleetauth {wanted}"))
                    .version(env!("CARGO_PKG_VERSION")),
                Some(wanted.to_string()),
            )
        }
    };
    let man = clap_mangen::Man::new(cmd.clone());
    let io = |e: std::io::Error| format!("cannot write the man page: {e}");
    man.render_title(out).map_err(io)?;
    man.render_name_section(out).map_err(io)?;
    man.render_synopsis_section(out).map_err(io)?;
    man.render_description_section(out).map_err(io)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out).map_err(io)?;
    }
    if name.is_none() {
        man.render_subcommands_section(out).map_err(io)?;
    }
    if cmd.get_after_help().is_some() {
        section(out, "EXAMPLES").map_err(io)?;
        let text = cmd
            .get_after_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        // Examples keep their lines and spacing (no filling or justification).
        writeln!(out, ".nf").map_err(io)?;
        for line in text.lines() {
            writeln!(out, "{}", escape(line)).map_err(io)?;
        }
        writeln!(out, ".fi").map_err(io)?;
    }
    let (takes_lists, text) = SEVERAL_LISTS;
    if name.as_deref().is_some_and(|n| takes_lists.contains(&n)) {
        section(out, "SEVERAL LISTS").map_err(io)?;
        writeln!(out, "{}", escape(text)).map_err(io)?;
    }
    section(out, "EXIT STATUS").map_err(io)?;
    for (code, meaning) in EXIT_STATUS {
        writeln!(out, ".TP\n\\fB{code}\\fR\n{}", escape(meaning)).map_err(io)?;
    }
    let vars: Vec<_> = ENVIRONMENT
        .iter()
        .filter(|(_, _, cmds)| name.as_deref().is_none_or(|n| cmds.contains(&n)))
        .collect();
    if !vars.is_empty() {
        section(out, "ENVIRONMENT").map_err(io)?;
        for (var, meaning, _) in vars {
            writeln!(out, ".TP\n\\fB{}\\fR\n{}", escape(var), escape(meaning)).map_err(io)?;
        }
    }
    section(out, "SEE ALSO").map_err(io)?;
    let others: Vec<String> = std::iter::once("fleetauth".to_string())
        .chain(names.iter().map(|n| format!("fleetauth-{n}")))
        .filter(|page| {
            Some(page.as_str()) != name.as_ref().map(|n| format!("fleetauth-{n}")).as_deref()
        })
        .filter(|page| name.is_some() || page != "fleetauth")
        .map(|page| format!("\\fB{}\\fR(1)", escape(&page)))
        .collect();
    writeln!(out, "{}", others.join(", ")).map_err(io)?;
    writeln!(
        out,
        "Each page is printed by \\fBfleetauth man\\fR [COMMAND], e.g. \\fBfleetauth man grant > fleetauth-grant.1\\fR."
    )
    .map_err(io)?;
    man.render_version_section(out).map_err(io)?;
    Ok(())
}

fn section(out: &mut dyn Write, title: &str) -> std::io::Result<()> {
    writeln!(out, ".SH \"{title}\"")
}

/// Text as roff: backslashes escaped, and a line never starting with a control character.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(command: Option<&str>) -> String {
        let mut out = Vec::new();
        render(command, &mut out).expect("renders");
        String::from_utf8(out).expect("roff is UTF-8")
    }

    #[test]
    fn every_command_has_a_page_with_its_flags_exit_status_and_examples() {
        for name in [
            "grant", "token", "open", "check", "login", "keygen", "bench", "emulate",
        ] {
            let text = page(Some(name));
            assert!(
                text.contains(&format!("fleetauth\\-{name}")),
                "{name}: title"
            );
            assert!(text.contains(".SH OPTIONS"), "{name}: options");
            assert!(text.contains(".SH \"EXIT STATUS\""), "{name}: exit status");
            assert!(
                text.contains(".SH EXAMPLES") || text.contains(".SH \"EXAMPLES\""),
                "{name}: examples"
            );
        }
        let grant = page(Some("grant"));
        assert!(
            grant.contains("\\-\\-replication\\-timeout"),
            "grant's flags are listed"
        );
        assert!(
            grant.contains("GITHUB_STEP_SUMMARY"),
            "grant's environment is listed"
        );
        assert!(
            !page(Some("keygen")).contains("GITHUB_ENV"),
            "keygen reads no GITHUB_ENV"
        );
    }

    #[test]
    fn the_commands_that_take_several_lists_say_how_they_are_merged() {
        for name in ["grant", "check", "token", "open"] {
            assert!(page(Some(name)).contains("SEVERAL LISTS"), "{name}");
        }
        assert!(!page(Some("keygen")).contains("SEVERAL LISTS"));
        assert!(page(Some("token")).contains("\\-\\-list"), "token's --list");
    }

    #[test]
    fn the_top_page_lists_the_pages_it_points_at() {
        let text = page(None);
        for name in ["grant", "token", "check"] {
            assert!(
                text.contains(&format!("fleetauth\\-{name}\\fR(1)")),
                "{name} in SEE ALSO"
            );
        }
    }

    #[test]
    fn an_unknown_command_names_the_known_ones() {
        let err = render(Some("grnat"), &mut Vec::new()).expect_err("no such page");
        assert!(err.contains("grnat") && err.contains("grant"), "{err}");
    }
}
