//! What a read-only identity may do in ARM: Azure's built-in Reader role (`actions: ["*/read"]`,
//! no data actions), matched against the action a request performs, as Azure names it
//! (`Microsoft.Network/routeTables/routes/write`). Written here, apart from the role table the
//! engine reads, so that a mistake in either cannot hide in the other.

use axum::http::Method;

/// Reader's `actions` (role definition `acdd72a7-3385-48ef-bd42-f606fba81ae7`).
const READER_ACTIONS: &[&str] = &["*/read"];

/// The action a request performs: `{provider}/{type}[/{childType}...]/read|write|delete`, or
/// `.../{action}/action` for a POST.
///
/// ```text
/// GET    /subscriptions/s/resourceGroups/g                                     Microsoft.Resources/subscriptions/resourceGroups/read
/// PUT    .../providers/Microsoft.Network/routeTables/t/routes/r                Microsoft.Network/routeTables/routes/write
/// POST   .../providers/Microsoft.ContainerRegistry/registries/r/listCredentials Microsoft.ContainerRegistry/registries/listCredentials/action
/// ```
pub(crate) fn action_of(method: &Method, path: &str) -> String {
    let segments: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    // The innermost provider namespace, and the type segments after it (every other one).
    let (ty, rest_len) = match segments.iter().rposition(|s| s.eq_ignore_ascii_case("providers")) {
        Some(i) if i + 1 < segments.len() => {
            let after = &segments[i + 2..];
            let mut ty = vec![segments[i + 1].to_string()];
            ty.extend(after.iter().step_by(2).map(|s| s.to_string()));
            (ty.join("/"), after.len())
        }
        _ => {
            let mut ty = vec!["Microsoft.Resources".to_string()];
            ty.extend(segments.iter().step_by(2).map(|s| s.to_string()));
            (ty.join("/"), segments.len())
        }
    };
    if *method == Method::POST {
        // `.../TYPE/NAME/ACTION`: the last segment is the action, not a type.
        let (base, action) = ty.rsplit_once('/').unwrap_or((ty.as_str(), ""));
        let base = if rest_len % 2 == 1 { base.to_string() } else { ty.clone() };
        let action = if rest_len % 2 == 1 { action } else { path.rsplit('/').next().unwrap_or_default() };
        return format!("{base}/{action}/action");
    }
    let verb = match *method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    };
    format!("{ty}/{verb}")
}

/// Whether Reader's actions allow `action` (case-insensitive; `*` spans any characters).
pub(crate) fn reader_allows(action: &str) -> bool {
    READER_ACTIONS.iter().any(|pattern| wildcard(pattern, action))
}

fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.to_ascii_lowercase(), text.to_ascii_lowercase());
    match p.split_once('*') {
        None => p == t,
        Some((head, tail)) => t.len() >= head.len() + tail.len() && t.starts_with(head) && t.ends_with(tail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RG: &str = "/subscriptions/s/resourceGroups/g";

    #[test]
    fn actions_are_named_as_azure_names_them() {
        let route = format!("{RG}/providers/Microsoft.Network/routeTables/t/routes/r");
        assert_eq!(action_of(&Method::PUT, &route), "Microsoft.Network/routeTables/routes/write");
        assert_eq!(action_of(&Method::DELETE, &route), "Microsoft.Network/routeTables/routes/delete");
        assert_eq!(action_of(&Method::GET, RG), "Microsoft.Resources/subscriptions/resourceGroups/read");
        assert_eq!(
            action_of(
                &Method::POST,
                &format!("{RG}/providers/Microsoft.ContainerRegistry/registries/r/listCredentials")
            ),
            "Microsoft.ContainerRegistry/registries/listCredentials/action"
        );
        assert_eq!(
            action_of(&Method::GET, &format!("{RG}/providers/Microsoft.Network/virtualNetworks")),
            "Microsoft.Network/virtualNetworks/read"
        );
        let assignment = format!(
            "{RG}/providers/Microsoft.ContainerRegistry/registries/r/providers/Microsoft.Authorization/roleAssignments/x"
        );
        assert_eq!(action_of(&Method::PUT, &assignment), "Microsoft.Authorization/roleAssignments/write");
    }

    #[test]
    fn reader_reads_and_nothing_else() {
        assert!(reader_allows("Microsoft.Network/routeTables/routes/read"));
        assert!(!reader_allows("Microsoft.Network/routeTables/routes/write"));
        assert!(!reader_allows("Microsoft.ContainerRegistry/registries/listCredentials/action"));
        assert!(!reader_allows("Microsoft.Authorization/roleAssignments/delete"));
    }
}
