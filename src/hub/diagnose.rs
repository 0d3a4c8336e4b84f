//! The app diagnosis (reference dev-hub.md §5): what the hub's answers add to an org's, one
//! answer → one cause, each with its fix. Pure functions: `grant`, the canary's stop and
//! `check --online` all use these.

use super::HubOptions;
use crate::token::{ErrorKind, GrantError};

/// The hub granted with this key, and a scratch org answers `invalid_client_id`.
pub const EXTERNAL_CLIENT_APP: &str = "the Dev Hub grants with this consumer key, but the scratch org does not know the app: the hub's app is an External Client App, and scratch orgs do not get External Client Apps. Use a connected app for the JWT flow (since Spring '26 creating a new connected app needs a Salesforce Support case; an existing one keeps working)";

/// `user hasn't approved this consumer` beyond the budget for an org the hub lists as Active.
pub const NOT_PRE_AUTHORIZED: &str = "the Dev Hub lists this org as Active, so it is not replication: the user is not pre-authorized for the app. In the connected app set Permitted Users to \"Admin approved users are pre-authorized\" and assign the users' profile or a permission set to the app in the Dev Hub (scratch orgs inherit it)";

/// The fix for the hub's own grant that failed with `error`.
pub fn hub_login(error: &GrantError, options: &HubOptions) -> String {
    let code = error.code.as_str();
    let description = error.description.to_ascii_lowercase();
    let wrong_place = format!(
        "the hub's audience or host is wrong: a Dev Hub is a production org, granted at --hub-instance-url {} (or its My Domain) with --hub-audience {} (now {} and {})",
        super::LOGIN,
        super::LOGIN,
        crate::urls::display(&options.host),
        options.audience
    );
    if description.contains("audience")
        || matches!(code, "connect_error" | "timeout" | "untrusted_certificate")
        || error.fleet_wide && code.starts_with("ERROR_HTTP_")
    {
        return wrong_place;
    }
    match error.hint.as_deref() {
        Some(hint) => format!("{hint} (for the Dev Hub user {})", options.username),
        None => format!(
            "Salesforce or the network failed for the Dev Hub; try again, or {}",
            super::HubError::GO_ON
        ),
    }
}

/// The cause an org's error has once the hub's view is known: `hub_granted` (the hub took
/// this key), `hub_status` (the org's Status in the hub). `None`: the error's own hint stands.
pub fn org(
    error: &GrantError,
    hub_granted: bool,
    hub_status: Option<&str>,
) -> Option<&'static str> {
    if hub_granted && error.code == "invalid_client_id" {
        return Some(EXTERNAL_CLIENT_APP);
    }
    if error.kind == ErrorKind::ReplicationDelay && hub_status == Some("Active") {
        return Some(NOT_PRE_AUTHORIZED);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> HubOptions {
        HubOptions::new(
            "hub@acme.com",
            "https://login.salesforce.com",
            None,
            None,
            None,
            std::time::Duration::from_secs(86400),
            false,
            None,
        )
        .unwrap()
    }

    #[test]
    fn one_answer_one_cause() {
        let eca = GrantError::permanent("invalid_client_id", "client identifier invalid", "x");
        assert!(org(&eca, true, Some("Active"))
            .unwrap()
            .contains("External Client App"));
        assert_eq!(org(&eca, false, None), None);
        let mut waiting =
            GrantError::permanent("invalid_grant", "user hasn't approved this consumer", "x");
        waiting.kind = ErrorKind::ReplicationDelay;
        assert_eq!(
            org(&waiting, true, Some("Active")),
            Some(NOT_PRE_AUTHORIZED)
        );
        assert_eq!(org(&waiting, true, Some("Creating")), None);
        let audience = GrantError::permanent("invalid_grant", "audience is invalid", "x");
        assert!(hub_login(&audience, &options()).contains("audience or host is wrong"));
        let refused = GrantError::permanent("connect_error", "refused", "x");
        assert!(hub_login(&refused, &options()).contains("audience or host is wrong"));
    }
}
