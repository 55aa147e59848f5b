//! Turns an ARM request path into what it addresses.

use axum::http::{Method, StatusCode};

use super::catalog::{self, Placement, TypeSpec};
use super::error::ArmFailure;

/// What an ARM path addresses.
#[derive(Debug)]
pub(crate) enum Target {
    /// `GET /subscriptions`.
    Subscriptions,
    /// `/subscriptions/{sub}`.
    Subscription { subscription: String },
    /// `/subscriptions/{sub}/resourcegroups`.
    ResourceGroups { subscription: String },
    /// `/subscriptions/{sub}/resourcegroups/{rg}`.
    ResourceGroup { subscription: String, id: String, name: String },
    /// One resource of a served type.
    Item { subscription: Option<String>, id: String, scope: String, spec: &'static TypeSpec },
    /// The resources of a type under `scope` (a subscription, group, parent resource, or any
    /// scope for extension types).
    Collection { subscription: Option<String>, scope: String, spec: &'static TypeSpec },
    /// `POST {id}/{action}`.
    Action { subscription: Option<String>, id: String, spec: &'static TypeSpec, action: String },
}

impl Target {
    /// The subscription in the path.
    pub fn subscription(&self) -> Option<&str> {
        match self {
            Target::Subscriptions => None,
            Target::Subscription { subscription }
            | Target::ResourceGroups { subscription }
            | Target::ResourceGroup { subscription, .. } => Some(subscription),
            Target::Item { subscription, .. }
            | Target::Collection { subscription, .. }
            | Target::Action { subscription, .. } => subscription.as_deref(),
        }
    }

    /// `(namespace, type without namespace)` for the api-version check.
    pub fn api_type(&self) -> (&'static str, &'static str) {
        match self {
            Target::Item { spec, .. } | Target::Collection { spec, .. } | Target::Action { spec, .. } => {
                (spec.namespace(), spec.local_type())
            }
            Target::ResourceGroup { .. } | Target::ResourceGroups { .. } => ("Microsoft.Resources", "resourceGroups"),
            Target::Subscription { .. } | Target::Subscriptions => ("Microsoft.Resources", "subscriptions"),
        }
    }
}

fn type_error(namespace: &str, ty: &str) -> ArmFailure {
    if catalog::namespace_known(namespace) {
        ArmFailure::new(
            StatusCode::BAD_REQUEST,
            "InvalidResourceType",
            format!("The resource type '{ty}' could not be found in the namespace '{namespace}'."),
        )
    } else {
        ArmFailure::bad_request("InvalidResourceNamespace", format!("The resource namespace '{namespace}' is invalid."))
    }
}

/// Parses `path` for `method`.
pub(crate) fn parse(path: &str, method: &Method) -> Result<Target, ArmFailure> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let is = |i: usize, word: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(word));
    let subscription = if is(0, "subscriptions") { segs.get(1).map(|s| s.to_string()) } else { None };
    if !is(0, "subscriptions") && !is(0, "providers") {
        return Err(ArmFailure::no_route(path));
    }
    let providers = segs.iter().rposition(|s| s.eq_ignore_ascii_case("providers")).filter(|p| p + 1 < segs.len());
    let Some(p) = providers else {
        return match (segs.len(), &subscription) {
            (1, _) => Ok(Target::Subscriptions),
            (2, Some(s)) => Ok(Target::Subscription { subscription: s.clone() }),
            (3, Some(s)) if is(2, "resourcegroups") => Ok(Target::ResourceGroups { subscription: s.clone() }),
            (4, Some(s)) if is(2, "resourcegroups") => Ok(Target::ResourceGroup {
                subscription: s.clone(),
                id: format!("/subscriptions/{s}/resourceGroups/{}", segs[3]),
                name: segs[3].to_string(),
            }),
            _ => Err(ArmFailure::no_route(path)),
        };
    };
    let scope = if p == 0 { String::new() } else { format!("/{}", segs[..p].join("/")) };
    let namespace = segs[p + 1];
    let rest = &segs[p + 2..];
    if rest.is_empty() {
        return Err(ArmFailure::no_route(path));
    }
    let full_type = |n: usize| {
        let mut t = namespace.to_string();
        for ty in rest[..n].iter().step_by(2) {
            t.push('/');
            t.push_str(ty);
        }
        t
    };
    let item_id = |n: usize| format!("{scope}/providers/{namespace}/{}", rest[..n].join("/"));
    // An extension type's scope is the path before its provider segment; a tracked resource's
    // scope is its resource group.
    let validate_scope = |spec: &TypeSpec| -> Result<(), ArmFailure> {
        let ok = match spec.placement {
            Placement::Extension => {
                scope.is_empty() && spec.name == azure_model::inventory::types::ROLE_DEFINITION || !scope.is_empty()
            }
            _ => {
                let s: Vec<&str> = scope.split('/').filter(|s| !s.is_empty()).collect();
                s.len() == 4 && s[2].eq_ignore_ascii_case("resourceGroups")
                    || (s.len() == 2 && rest.len() == 1 && matches!(spec.placement, Placement::ResourceGroup))
            }
        };
        if ok { Ok(()) } else { Err(ArmFailure::no_route(path)) }
    };
    if rest.len().is_multiple_of(2) {
        let ty = full_type(rest.len());
        let spec = catalog::lookup(&ty).ok_or_else(|| type_error(namespace, &ty))?;
        validate_scope(spec)?;
        return Ok(Target::Item { subscription, id: item_id(rest.len()), scope, spec });
    }
    if rest.len() == 1 {
        let ty = full_type(1);
        let spec = catalog::lookup(&ty).ok_or_else(|| type_error(namespace, &ty))?;
        validate_scope(spec)?;
        return Ok(Target::Collection { subscription, scope, spec });
    }
    let parent_len = rest.len() - 1;
    if *method == Method::POST {
        let ty = full_type(parent_len);
        let spec = catalog::lookup(&ty).ok_or_else(|| type_error(namespace, &ty))?;
        validate_scope(spec)?;
        return Ok(Target::Action {
            subscription,
            id: item_id(parent_len),
            spec,
            action: rest[parent_len].to_string(),
        });
    }
    let ty = format!("{}/{}", full_type(parent_len), rest[parent_len]);
    let spec = catalog::lookup(&ty).ok_or_else(|| type_error(namespace, &ty))?;
    Ok(Target::Collection { subscription, scope: item_id(parent_len), spec })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RG: &str = "/subscriptions/s/resourceGroups/rg";

    #[test]
    fn shapes() {
        let t = parse(&format!("{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/a"), &Method::GET).unwrap();
        assert!(matches!(t, Target::Item { spec, .. } if spec.name.ends_with("subnets")));
        let t = parse(&format!("{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets"), &Method::GET).unwrap();
        assert!(matches!(t, Target::Collection { ref scope, .. } if scope.ends_with("virtualNetworks/v")));
        let t =
            parse(&format!("{RG}/providers/Microsoft.ContainerRegistry/registries/r/listCredentials"), &Method::POST)
                .unwrap();
        assert!(matches!(t, Target::Action { ref action, .. } if action == "listCredentials"));
        let t = parse("/subscriptions/s/providers/Microsoft.ContainerRegistry/registries", &Method::GET).unwrap();
        assert!(matches!(t, Target::Collection { ref scope, .. } if scope == "/subscriptions/s"));
        let ra = format!(
            "{RG}/providers/Microsoft.ContainerRegistry/registries/r/providers/Microsoft.Authorization/roleAssignments/g"
        );
        let t = parse(&ra, &Method::PUT).unwrap();
        assert!(matches!(t, Target::Item { ref scope, .. } if scope.ends_with("registries/r")));
        let t = parse("/providers/Microsoft.Authorization/roleDefinitions/x", &Method::GET).unwrap();
        assert!(matches!(t, Target::Item { ref scope, .. } if scope.is_empty()));
        assert!(matches!(
            parse("/subscriptions/s/resourcegroups/rg", &Method::GET).unwrap(),
            Target::ResourceGroup { .. }
        ));
        let bad = parse(&format!("{RG}/providers/Microsoft.Network/widgets/w"), &Method::GET).unwrap_err();
        assert_eq!(bad.error.error.code, "InvalidResourceType");
        let bad = parse(&format!("{RG}/providers/Microsoft.Nope/widgets/w"), &Method::GET).unwrap_err();
        assert_eq!(bad.error.error.code, "InvalidResourceNamespace");
        assert!(parse("/foo", &Method::GET).is_err());
    }
}
