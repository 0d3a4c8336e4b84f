//! `fleetauth keygen`: the key pair a Dev Hub's connected app needs, made with crates instead
//! of openssl: `server.key` (RSA, PKCS#8 PEM, 0600) and a self-signed SHA-256 `server.crt`.
//! Both the key and the certificate's signature come from aws-lc-rs.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};

use crate::cli::KeygenArgs;
use crate::exit::Exit;
use crate::store::write_atomic;

pub fn run(args: KeygenArgs) -> Exit {
    match keygen(&args) {
        Ok(()) => Exit::Success,
        Err(e) => crate::finish::fail(&crate::finish::UsageError(e), &[], false),
    }
}

/// PEM of a new RSA private key (PKCS#8) and a self-signed certificate for it.
pub fn generate(bits: usize, days: u32, common_name: &str) -> Result<(String, String), String> {
    let size = match bits {
        2048 => KeySize::Rsa2048,
        3072 => KeySize::Rsa3072,
        4096 => KeySize::Rsa4096,
        other => {
            return Err(format!(
                "cannot generate a {other}-bit key; use 2048 or 4096"
            ))
        }
    };
    let key = KeyPair::generate(size).map_err(|e| format!("cannot generate the key: {e}"))?;
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key)
        .map_err(|e| format!("cannot encode the key: {e}"))?;
    let key_pem = pem::encode_config(
        &pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    let pair = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)
        .map_err(|e| format!("cannot load the key to sign the certificate: {e}"))?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = not_after(now, days)?;
    let cert = params
        .self_signed(&pair)
        .map_err(|e| format!("cannot sign the certificate: {e}"))?;
    Ok((key_pem, cert.pem()))
}

/// The certificate's last day, `days` from `now`: no later than 9999-12-31, the last date a
/// certificate (and `time`) can carry.
fn not_after(now: time::OffsetDateTime, days: u32) -> Result<time::OffsetDateTime, String> {
    let last = time::Date::from_calendar_date(9999, time::Month::December, 31)
        .and_then(|d| d.with_hms(23, 59, 59))
        .map_err(|e| e.to_string())?
        .assume_utc();
    now.checked_add(time::Duration::days(i64::from(days)))
        .filter(|end| *end <= last)
        .ok_or_else(|| {
            format!(
                "--days {days} ends after the year 9999, the last date a certificate can carry; use at most {}",
                (last - now).whole_days()
            )
        })
}

fn keygen(args: &KeygenArgs) -> Result<(), String> {
    if args.days == 0 {
        return Err("--days must be at least 1".into());
    }
    // Checked before a key is generated or anything is written.
    not_after(time::OffsetDateTime::now_utc(), args.days)?;
    let dir = &args.out_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let key_path = dir.join("server.key");
    let cert_path = dir.join("server.crt");
    let existing: Vec<&Path> = [key_path.as_path(), cert_path.as_path()]
        .into_iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect();
    if !args.force && !existing.is_empty() {
        let names: Vec<String> = existing.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "{} already exist(s); a connected app may depend on it. Pass --force to replace, or pick another --out-dir",
            names.join(" and ")
        ));
    }
    crate::say_err!("generating a {}-bit RSA key...", args.bits);
    let (key_pem, cert_pem) = generate(args.bits, args.days, &args.common_name)?;
    write_atomic(&key_path, key_pem.as_bytes(), 0o600).map_err(|e| e.to_string())?;
    write_atomic(&cert_path, cert_pem.as_bytes(), 0o644).map_err(|e| e.to_string())?;
    crate::say_out!(
        "wrote {} (private, mode 0600) and {} (valid {} days)",
        key_path.display(),
        cert_path.display(),
        args.days
    );
    crate::say_out!(
        "\nNext, in the Dev Hub (Setup > App Manager > New Connected App):\n\
         1. Enable OAuth Settings; callback URL http://localhost:1717/OauthRedirect.\n\
         2. Tick \"Use digital signatures\" and upload {cert}.\n\
         3. OAuth scopes: \"Manage user data via APIs (api)\", \"Perform requests at any time (refresh_token, offline_access)\"\n\
            and \"Manage user data via Web browsers (web)\".\n\
         4. Save, then Manage > Edit Policies: Permitted Users = \"Admin approved users are pre-authorized\".\n\
         5. Add the System Administrator profile (or a permission set your scratch-org admins get) to the app.\n\
         6. Copy the Consumer Key, then check the setup before a fleet run:\n\
            fleetauth check orgs.csv -i <consumer key> -f {key} --cert {cert}\n\
         Keep {key} secret (a CI secret: base64 -w0 {key} into SFDX_HUB_KEY_BASE64).",
        cert = cert_path.display(),
        key = key_path.display()
    );
    Ok(())
}
