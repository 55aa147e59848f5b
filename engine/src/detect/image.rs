//! Image names: `IMAGE_NOT_FOUND` (repository or tag missing) and `LOGIN_SERVER_TYPO` (the
//! registry host is not a login server).
//!
//! - A host within a few edits of a known login server is a typo whatever the error; a host
//!   that does not resolve (`no such host`) and matches no registry is one too, with less
//!   confidence.
//! - `not found` from a known registry is a missing repository or tag; the registry's content
//!   in the inventory confirms it and suggests the closest name.
//! - ACR answers `401` for repositories that do not exist: an `unauthorized` pull whose
//!   credentials check out (see [`super::access`]) of an image the content lacks is one too.

use azure_model::Inventory;
use azure_model::Resource;
use azure_model::container_registry::{LOGIN_SERVER_SUFFIXES, RegistryProperties, is_acr_login_server};

use super::Context;
use super::access::assess_auth;
use super::support::{Draft, Findings, RegistryMatch, match_registry, registry_name_of_host};
use crate::evidence::PullFailure;
use crate::finding::{Blame, Confidence, Finding, FindingCode};
use crate::plan::Action;
use crate::symptom::{Credentials, ImageRef, SymptomClass};

/// What the registry's content says is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Absence {
    /// No such repository. `candidates`: the closest repositories.
    Repository { repo: String, candidates: Vec<String>, available: Vec<String> },
    /// The repository has no such tag. `candidates`: the closest tags.
    Tag { repo: String, tag: String, candidates: Vec<String>, available: Vec<String> },
}

impl Absence {
    /// The single best replacement, when exactly one candidate is closest.
    fn replacement(&self, inv: &Inventory, image: &ImageRef) -> Option<String> {
        match self {
            Absence::Tag { repo, candidates, .. } if candidates.len() == 1 => {
                Some(format!("{}/{repo}:{}", image.registry, candidates[0]))
            }
            Absence::Repository { candidates, .. } if candidates.len() == 1 => {
                let tag = image.tag.as_deref()?;
                let content = inv.content_of(&image.registry)?;
                let repo = content.repositories.iter().find(|r| r.name == candidates[0])?;
                repo.tags.iter().any(|t| t == tag).then(|| format!("{}/{}:{tag}", image.registry, repo.name))
            }
            _ => None,
        }
    }
}

/// The names closest to `wanted` (within about a third of its length, at least 2 edits);
/// several only when equally close.
fn closest<'a>(wanted: &str, options: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (wanted.chars().count() / 3).max(2);
    let last = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let mut scored: Vec<(usize, &str)> = options
        .filter(|o| *o != wanted)
        .filter_map(|o| {
            let d = strsim::levenshtein(wanted, o);
            // `web` for `shop/web`: the same name in another namespace is close too.
            let d = if (wanted.contains('/') || o.contains('/')) && last(wanted) == last(o) { d.min(1) } else { d };
            (d <= limit).then_some((d, o))
        })
        .collect();
    scored.sort();
    let best = scored.first().map(|(d, _)| *d);
    scored.into_iter().filter(|(d, _)| Some(*d) == best).map(|(_, o)| o).collect()
}

/// What the inventory's content of the image's registry says is missing, if anything. `None`
/// when the content is unknown or the image is there.
pub(crate) fn image_absence(inv: &Inventory, image: &ImageRef) -> Option<Absence> {
    let content = inv.content_of(&image.registry)?;
    let names = || content.repositories.iter().map(|r| r.name.as_str());
    let Some(repo) = content.repositories.iter().find(|r| r.name == image.repository) else {
        return Some(Absence::Repository {
            repo: image.repository.clone(),
            candidates: closest(&image.repository, names()).into_iter().map(str::to_string).collect(),
            available: names().map(str::to_string).collect(),
        });
    };
    // A digest cannot be checked against tags.
    let tag = image.tag.as_deref().filter(|_| image.digest.is_none())?;
    if repo.tags.iter().any(|t| t == tag) {
        return None;
    }
    Some(Absence::Tag {
        repo: repo.name.clone(),
        tag: tag.to_string(),
        candidates: closest(tag, repo.tags.iter().map(String::as_str)).into_iter().map(str::to_string).collect(),
        available: repo.tags.clone(),
    })
}

/// Runs the detector.
pub(super) fn detect(ctx: &Context<'_>) -> Vec<Finding> {
    let inv = &ctx.evidence.azure;
    let mut out = Findings::default();
    for f in &ctx.failures {
        let Some(image) = f.image.as_ref() else { continue };
        match match_registry(inv, &image.registry) {
            RegistryMatch::Typo(close) => {
                typo(&mut out, f, image, &close);
                continue;
            }
            RegistryMatch::Unknown { acr } if no_such_host(f) => {
                unresolvable_host(&mut out, ctx, f, image, acr);
                continue;
            }
            _ => {}
        }
        match f.symptom.class {
            SymptomClass::NotFound => not_found(&mut out, ctx, f, image, None),
            SymptomClass::Unauthorized => {
                if let Some(a) = assess_auth(ctx, f)
                    && a.credentials_fine()
                    && let Some(absence) = a.absence.as_ref()
                {
                    not_found(&mut out, ctx, f, image, Some(absence));
                }
            }
            _ => {}
        }
    }
    out.into_vec()
}

fn no_such_host(f: &PullFailure) -> bool {
    f.symptom.class == SymptomClass::Dns && f.symptom.attempts.iter().any(|a| a.detail.contains("no such host"))
}

/// The spec image with its registry host replaced.
fn with_host(spec: &str, host: &str) -> String {
    match spec.split_once('/') {
        Some((_, rest)) => format!("{host}/{rest}"),
        None => spec.to_string(),
    }
}

fn set_image(f: &PullFailure, image: String) -> Action {
    Action::SetImage { workload: f.workload.clone(), container: f.pod.container.clone(), image }
}

fn workload_blame(f: &PullFailure, note: String) -> Blame {
    Blame::new(f.workload.kind.clone(), format!("{}/{}", f.workload.namespace, f.workload.name)).note(note)
}

fn typo(out: &mut Findings, f: &PullFailure, image: &ImageRef, close: &[&Resource<RegistryProperties>]) {
    let host = &image.registry;
    let logins: Vec<&str> = close.iter().filter_map(|r| r.properties.login_server.as_deref()).collect();
    // `no such host` proves the host does not exist; otherwise it exists (someone else's
    // registry), and only a single edit is taken as surely a slip.
    let edits =
        logins.first().map(|l| strsim::levenshtein(&host.to_ascii_lowercase(), &l.to_ascii_lowercase())).unwrap_or(0);
    let definite = no_such_host(f) || (edits == 1 && f.symptom.class == SymptomClass::Unauthorized);
    let confidence = if logins.len() == 1 && definite { Confidence::High } else { Confidence::Medium };
    let mut draft = Draft::new(
        FindingCode::LoginServerTypo,
        confidence,
        f,
        format!(
            "{} {}/{} pulls from {host}, which is not a registry login server; did you mean {}?",
            f.workload.kind,
            f.workload.namespace,
            f.workload.name,
            logins.join(" or ")
        ),
    )
    .blame(workload_blame(f, format!("image {} names registry host {host}", f.pod.image)));
    for r in close {
        draft = draft.line(format!(
            "registry {} has login server {} ({} edit(s) from {host}); no registry in the inventory has login server {host}",
            r.name,
            r.properties.login_server.as_deref().unwrap_or_default(),
            strsim::levenshtein(&host.to_ascii_lowercase(), &r.properties.login_server.as_deref().unwrap_or_default().to_ascii_lowercase())
        ));
    }
    draft = match logins.as_slice() {
        [one] => draft.action(set_image(f, with_host(&f.pod.image, one))),
        many => draft.action(Action::Manual {
            change: None,
            description: format!("point the image at the intended registry: one of {}", many.join(", ")),
            commands: many
                .iter()
                .map(|l| {
                    format!(
                        "kubectl -n {} set image {}/{} {}={}",
                        f.workload.namespace,
                        f.workload.kind.to_ascii_lowercase(),
                        f.workload.name,
                        f.pod.container,
                        with_host(&f.pod.image, l)
                    )
                })
                .collect(),
        }),
    };
    out.add(&format!("{host}|{}", f.pod.image), f, draft);
}

/// `myacr.azureacr.io` -> `myacr.azurecr.io`: the first label with the closest ACR suffix.
fn suffix_fix(host: &str) -> Option<String> {
    let (label, rest) = host.split_once('.')?;
    LOGIN_SERVER_SUFFIXES
        .iter()
        .map(|s| s.trim_start_matches('.'))
        .map(|s| (strsim::levenshtein(&rest.to_ascii_lowercase(), s), s))
        .filter(|(d, _)| (1..=3).contains(d))
        .min()
        .map(|(_, s)| format!("{label}.{s}"))
}

fn unresolvable_host(out: &mut Findings, ctx: &Context<'_>, f: &PullFailure, image: &ImageRef, acr: bool) {
    let inv = &ctx.evidence.azure;
    let host = &image.registry;
    let known: Vec<&str> = inv.registries.iter().filter_map(|r| r.properties.login_server.as_deref()).collect();
    let fix = if acr { None } else { suffix_fix(host) };
    let mut draft = Draft::new(
        FindingCode::LoginServerTypo,
        match (&fix, known.is_empty()) {
            (Some(_), true) => Confidence::Medium,
            _ => Confidence::Low,
        },
        f,
        match &fix {
            Some(fix) => {
                format!("The image host {host} does not resolve; it is not an ACR login server (did you mean {fix}?).")
            }
            None => format!("The image host {host} does not resolve and is no registry in the inventory."),
        },
    )
    .blame(workload_blame(f, format!("image {} names registry host {host}", f.pod.image)))
    .line(format!("DNS: {host} does not exist (no such host)"));
    if known.is_empty() {
        draft = draft.line("the inventory lists no registry to compare the host with".to_string());
    } else {
        draft = draft.line(format!("registries in the inventory: {}", known.join(", ")));
    }
    draft = match &fix {
        Some(fix) => draft.action(set_image(f, with_host(&f.pod.image, fix))),
        None => draft.action(Action::Manual {
            change: None,
            description: format!("correct the registry host of {} in {}", f.pod.image, f.workload),
            commands: vec![format!("az acr list --query \"[].loginServer\" -o tsv")],
        }),
    };
    out.add(&format!("{host}|{}", f.pod.image), f, draft);
}

fn not_found(out: &mut Findings, ctx: &Context<'_>, f: &PullFailure, image: &ImageRef, via_401: Option<&Absence>) {
    let inv = &ctx.evidence.azure;
    let registry = inv.registry_by_login_server(&image.registry);
    let registry_name =
        registry.map(|r| r.name.clone()).unwrap_or_else(|| registry_name_of_host(&image.registry).to_string());
    let absence = via_401.cloned().or_else(|| image_absence(inv, image));
    let content_known = inv.content_of(&image.registry).is_some();
    let confidence = if absence.is_some() { Confidence::High } else { Confidence::Medium };
    let (summary, facts) = match &absence {
        Some(Absence::Tag { repo, tag, candidates, available }) => (
            format!("Tag {tag} does not exist in repository {repo} of registry {registry_name}{}.", hint(candidates)),
            vec![format!("registry {registry_name}: repository {repo} has tags {} (no {tag})", list(available))],
        ),
        Some(Absence::Repository { repo, candidates, available }) => (
            format!("Repository {repo} does not exist in registry {registry_name}{}.", hint(candidates)),
            vec![format!("registry {registry_name}: repositories are {} (no {repo})", list(available))],
        ),
        None if content_known => (
            format!("The registry {registry_name} answers that {image} does not exist."),
            vec![format!(
                "the inventory's content of {registry_name} lists {image}; it may be stale, or the tag was deleted since"
            )],
        ),
        None => (
            format!("The registry {registry_name} answers that {image} does not exist."),
            vec![format!(
                "the inventory has no repository listing for {}; the registry's answer alone says so",
                image.registry
            )],
        ),
    };
    let mut draft = Draft::new(FindingCode::ImageNotFound, confidence, f, summary)
        .blame(workload_blame(f, format!("image {} does not exist", f.pod.image)))
        .lines(facts);
    if via_401.is_some() {
        let anonymous = f.symptom.attempts.iter().all(|a| a.credentials != Some(Credentials::Oauth));
        draft = draft.line(format!(
            "the registry answered 401{}, which ACR also answers for repositories and tags that do not exist; the pulling credentials hold a pull role on it",
            if anonymous { " to an anonymous request" } else { "" }
        ));
    }
    let replacement = absence.as_ref().and_then(|a| a.replacement(inv, image)).filter(|_| image.digest.is_none());
    draft = match (replacement, &absence) {
        (Some(new), _) => draft.action(set_image(f, new)),
        (None, Some(Absence::Tag { repo, candidates, .. })) => draft.action(Action::Manual {
            change: None,
            description: if candidates.is_empty() {
                format!("push {image}, or point {} at an existing tag of {repo}", f.workload)
            } else {
                format!("point {} at the intended tag of {repo}: one of {}", f.workload, candidates.join(", "))
            },
            commands: vec![format!(
                "az acr repository show-tags -n {registry_name} --repository {repo} --orderby time_desc -o table"
            )],
        }),
        (None, _) if registry.is_none() && !is_acr_login_server(&image.registry) => draft.action(Action::Manual {
            change: None,
            description: format!("push {image}, or point {} at an image that exists", f.workload),
            commands: vec![format!("docker manifest inspect {image}")],
        }),
        (None, _) => draft.action(Action::Manual {
            change: None,
            description: format!("push {image}, or point {} at an image that exists", f.workload),
            commands: vec![
                format!("az acr repository list -n {registry_name} -o table"),
                format!("az acr repository show-tags -n {registry_name} --repository {} -o table", image.repository),
            ],
        }),
    };
    out.add(&f.pod.image, f, draft);
}

fn hint(candidates: &[String]) -> String {
    match candidates {
        [] => String::new(),
        [one] => format!(" (closest: {one})"),
        many => format!(" (closest: {})", many.join(", ")),
    }
}

fn list(items: &[String]) -> String {
    const MAX: usize = 12;
    let mut s = items.iter().take(MAX).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > MAX {
        s.push_str(&format!(" and {} more", items.len() - MAX));
    }
    if s.is_empty() { "none".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names() {
        let tags = ["1.2.7", "1.3.0", "1.4.1", "1.4.2"];
        assert_eq!(closest("1.4.20", tags.into_iter()), ["1.4.2"]);
        // Equally close: ambiguous.
        assert_eq!(closest("1.4.3", tags.into_iter()), ["1.4.1", "1.4.2"]);
        assert!(closest("nightly-2024", tags.into_iter()).is_empty());
        assert_eq!(closest("web", ["shop/web", "shop/cart"].into_iter()), ["shop/web"]);
        assert_eq!(closest("shop/wbe", ["shop/web", "shop/cart"].into_iter()), ["shop/web"]);
    }

    #[test]
    fn suffix_fixes() {
        assert_eq!(suffix_fix("acrshop.azureacr.io").as_deref(), Some("acrshop.azurecr.io"));
        assert_eq!(suffix_fix("acrshop.azurcr.io").as_deref(), Some("acrshop.azurecr.io"));
        assert_eq!(suffix_fix("ghcr.io"), None);
        assert_eq!(with_host("acrshop.azureacr.io/shop/web:1", "acrshop.azurecr.io"), "acrshop.azurecr.io/shop/web:1");
    }
}

#[cfg(test)]
mod world_tests {
    use super::super::world::*;
    use crate::finding::{Confidence, FindingCode};
    use crate::plan::Action;

    fn broken(image: &str, error: impl Fn(&Runtime, &str) -> String) -> World {
        let mut w = World::baseline("image", K131);
        w.break_rollout("web", Some(image), error);
        w
    }

    fn only(w: &World) -> crate::finding::Finding {
        let d = diagnose(w);
        assert_eq!(d.findings.len(), 1, "{:#?}", d.findings);
        d.findings.into_iter().next().unwrap()
    }

    #[test]
    fn an_anonymous_401_for_a_missing_repository_is_image_not_found() {
        // ACR answers 401 for repositories that do not exist; the kubelet identity is fine.
        for creds in ["anonymous", "oauth"] {
            let f = only(&broken(&format!("{LOGIN}/shop/wbe:1.4.2"), |rt, img| {
                rt.token(img, creds, "401 Unauthorized", None)
            }));
            assert_eq!((f.code, f.confidence), (FindingCode::ImageNotFound, Confidence::High), "{creds}");
            assert!(
                matches!(&f.plan.actions[0], Action::SetImage { image, .. } if image == &format!("{LOGIN}/shop/web:1.4.2"))
            );
        }
    }

    #[test]
    fn several_equally_close_tags_are_listed_not_chosen() {
        let f = only(&broken(&format!("{LOGIN}/shop/web:1.4.3"), |rt, img| rt.not_found(img)));
        assert_eq!(f.code, FindingCode::ImageNotFound);
        match &f.plan.actions[0] {
            Action::Manual { description, commands, .. } => {
                assert!(description.contains("1.4.1, 1.4.2"), "{description}");
                assert!(commands[0].contains("az acr repository show-tags -n acrshopweu --repository shop/web"));
            }
            a => panic!("{a:?}"),
        }
        // No close tag at all.
        let f = only(&broken(&format!("{LOGIN}/shop/web:nightly-2025"), |rt, img| rt.not_found(img)));
        assert!(f.plan.actions[0].needs_human());
    }

    #[test]
    fn without_the_registry_content_the_answer_alone_is_medium() {
        let mut w = broken(&format!("{LOGIN}/shop/web:1.4.20"), |rt, img| rt.not_found(img));
        w.azure["registryContent"] = serde_json::json!([]);
        let f = only(&w);
        assert_eq!((f.code, f.confidence), (FindingCode::ImageNotFound, Confidence::Medium));
        assert!(f.plan.actions[0].needs_human());
    }

    #[test]
    fn a_typo_with_a_resolving_host_is_still_a_typo_and_nothing_else() {
        // `acrshopweu2.azurecr.io` exists (someone else's): anonymous 401, not a role problem.
        let f = only(&broken("acrshopweu2.azurecr.io/shop/web:1.4.2", |rt, img| {
            rt.token(img, "anonymous", "401 Unauthorized", None)
        }));
        assert_eq!((f.code, f.confidence), (FindingCode::LoginServerTypo, Confidence::High));
        assert!(
            matches!(&f.plan.actions[0], Action::SetImage { image, .. } if image == &format!("{LOGIN}/shop/web:1.4.2"))
        );
    }

    #[test]
    fn how_far_a_host_may_be_from_a_login_server() {
        let anonymous = |rt: &Runtime, img: &str| rt.token(img, "anonymous", "401 Unauthorized", None);
        // Two edits from a login server, and the host exists: probably a slip, not surely.
        let f = only(&broken("acrshopweu12.azurecr.io/shop/web:1.4.2", anonymous));
        assert_eq!((f.code, f.confidence), (FindingCode::LoginServerTypo, Confidence::Medium));
        // Three edits: another registry (e.g. in a subscription not collected), not a typo.
        let w = broken("acrshopprd.azurecr.io/shop/web:1.4.2", anonymous);
        assert!(codes(&w).iter().all(|c| *c != "LOGIN_SERVER_TYPO"), "{:?}", codes(&w));
    }

    #[test]
    fn a_missing_image_elsewhere_than_acr_is_named_with_generic_commands() {
        let f = only(&broken("docker.io/library/nginx:1.99", |rt, img| rt.not_found(img)));
        assert_eq!((f.code, f.confidence), (FindingCode::ImageNotFound, Confidence::Medium));
        match &f.plan.actions[0] {
            Action::Manual { commands, .. } => {
                assert_eq!(commands, &["docker manifest inspect docker.io/library/nginx:1.99"])
            }
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn an_ambiguous_typo_lists_the_candidates() {
        let mut w = broken("acrshopweo.azurecr.io/shop/web:1.4.2", |rt, img| {
            rt.request(img, "dial tcp: lookup acrshopweo.azurecr.io on 168.63.129.16:53: no such host")
        });
        let mut other = w.resource(&registry_id()).clone();
        let id = arm_id(RG_ACR, "Microsoft.ContainerRegistry/registries/acrshopweb");
        other["id"] = serde_json::json!(id);
        other["name"] = serde_json::json!("acrshopweb");
        other["properties"]["loginServer"] = serde_json::json!("acrshopweb.azurecr.io");
        w.add(other);
        let f = only(&w);
        assert_eq!((f.code, f.confidence), (FindingCode::LoginServerTypo, Confidence::Medium));
        match &f.plan.actions[0] {
            Action::Manual { commands, .. } => assert_eq!(commands.len(), 2),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn an_unresolvable_host_without_inventory_gets_the_suffix_fixed() {
        let mut w = broken("acrshopweu.azureacr.io/shop/web:1.4.2", |rt, img| {
            rt.request(img, "dial tcp: lookup acrshopweu.azureacr.io on 168.63.129.16:53: no such host")
        });
        w.azure["resources"].as_array_mut().unwrap().retain(|r| r["type"] != "Microsoft.ContainerRegistry/registries");
        let f = only(&w);
        assert_eq!((f.code, f.confidence), (FindingCode::LoginServerTypo, Confidence::Medium));
        assert!(
            matches!(&f.plan.actions[0], Action::SetImage { image, .. } if image == &format!("{LOGIN}/shop/web:1.4.2"))
        );
    }

    #[test]
    fn a_dns_timeout_on_a_known_registry_is_not_a_typo() {
        let w = broken(&format!("{LOGIN}/shop/web:1.4.2"), |rt, img| {
            rt.request(img, "dial tcp: lookup acrshopweu.azurecr.io on 10.0.0.10:53: read udp 10.10.0.4:40123->10.0.0.10:53: i/o timeout")
        });
        let d = diagnose(&w);
        assert_eq!(d.failures.len(), 2);
        assert!(d.findings.is_empty(), "{:#?}", d.findings);
    }
}
