//! Reading a whole Kubernetes image-pull message: which message it is, which image, and
//! the attempts inside its error.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::attempt::{PullAttempt, image_in, strip_rpc};
use super::class::{Credentials, MessageKind, SymptomClass};
use super::image::ImageRef;

/// What one raw image-pull message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Symptom {
    /// Which Kubernetes message this was.
    pub kind: MessageKind,
    /// The overall class: that of the most telling attempt (see [`Symptom::parse`]),
    /// `unknown` when there is none.
    pub class: SymptomClass,
    /// The image being pulled, from the quoted image of the event or, for a bare error,
    /// from its `failed to pull and unpack image "IMG"` clause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageRef>,
    /// One entry per credential attempt; empty only when nothing error-like was found.
    #[serde(default)]
    pub attempts: Vec<PullAttempt>,
    /// Secret names from a `FailedToRetrieveImagePullSecret` event.
    #[serde(default)]
    pub secret_names: Vec<String>,
}

const FAILED_TO_PULL: &str = "Failed to pull image \"";
const BACK_OFF: &str = "Back-off pulling image \"";
const SECRETS: &str = "Unable to retrieve some image pull secrets (";
const ERR_IMAGE_PULL: &str = "ErrImagePull";
const IMAGE_PULL_BACK_OFF: &str = "ImagePullBackOff";

/// Waiting reasons the kubelet may put between `Back-off pulling image "IMG"` and ERR.
const REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "RegistryUnavailable",
    "SignatureValidationFailed",
    "ImageInspectError",
];

/// Where a new attempt begins inside `[err1, err2]` (after the `, ` separator).
const ATTEMPT_STARTS: &[&str] = &[
    "rpc error: ",
    "failed to pull and unpack image",
    "failed to pull image",
    "failed to resolve reference",
    "failed to resolve image",
    "failed to authorize",
    "failed to do request",
    "pulling from host ",
    "Error response from daemon",
    "no match for platform",
];

/// Lower-case words that make an unrecognised bare text worth keeping as an attempt.
const ERROR_WORDS: &[&str] = &["error", "fail", "unable", "invalid", "cannot", "denied"];

impl Symptom {
    /// Reads one raw image-pull message: an event message, a container waiting-state
    /// message, or a bare runtime error. Never panics. Leading text before the known
    /// Kubernetes wording (e.g. a `kubectl describe` event line) is ignored, and `\"`
    /// left over from JSON is read as `"`.
    ///
    /// The error is split into attempts at the kubelet's `[err1, err2]` aggregate. When
    /// attempts disagree the overall class is the first of: platform mismatch,
    /// forbidden, unauthorized with oauth/basic (or unknown) credentials, not found, dns,
    /// tls, timeout, unreachable, throttled, anonymous unauthorized, unknown; on ties the
    /// earlier attempt wins.
    ///
    /// ```
    /// use pulldoctor::symptom::{Credentials, MessageKind, Symptom, SymptomClass};
    ///
    /// let symptom = Symptom::parse(
    ///     r#"Failed to pull image "myacr.azurecr.io/app:v1": [rpc error: code = Unknown desc = failed to pull and unpack image "myacr.azurecr.io/app:v1": failed to resolve reference "myacr.azurecr.io/app:v1": failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized, rpc error: code = Unknown desc = failed to pull and unpack image "myacr.azurecr.io/app:v1": failed to resolve reference "myacr.azurecr.io/app:v1": failed to authorize: failed to fetch oauth token: unexpected status: 403 Forbidden]"#,
    /// );
    /// assert_eq!(symptom.kind, MessageKind::FailedToPull);
    /// assert_eq!(symptom.class, SymptomClass::Forbidden);
    /// assert_eq!(symptom.status(), Some(403));
    /// assert_eq!(symptom.attempts.len(), 2);
    /// assert_eq!(symptom.attempts[0].credentials, Some(Credentials::Anonymous));
    /// assert!(symptom.credentials_sent());
    /// assert_eq!(symptom.image.unwrap().to_string(), "myacr.azurecr.io/app:v1");
    /// ```
    pub fn parse(message: &str) -> Symptom {
        // A message copied out of JSON may still carry `\"` around the image.
        let unescaped;
        let text = if message.contains("\\\"") {
            unescaped = message.replace("\\\"", "\"");
            unescaped.trim()
        } else {
            message.trim()
        };
        let envelope = Envelope::read(text);
        let image = envelope.quoted_image.and_then(ImageRef::parse).or_else(|| envelope.error.and_then(image_in));

        let mut attempts: Vec<PullAttempt> = envelope
            .error
            .map(|error| {
                split_attempts(error)
                    .into_iter()
                    .map(|(code, part)| PullAttempt::read(part, code, image.as_ref()))
                    .collect()
            })
            .unwrap_or_default();
        if envelope.kind == MessageKind::Raw
            && attempts.iter().all(|a| a.class == SymptomClass::Unknown)
            && !looks_like_error(text)
        {
            attempts.clear();
        }

        let mut symptom = Symptom {
            kind: envelope.kind,
            class: SymptomClass::Unknown,
            image,
            attempts,
            secret_names: envelope.secret_names,
        };
        symptom.class = symptom.most_telling().map_or(SymptomClass::Unknown, |attempt| attempt.class);
        symptom
    }

    /// The attempt that decides [`Symptom::class`], if any.
    fn most_telling(&self) -> Option<&PullAttempt> {
        // `min_by_key` keeps the first of equal keys.
        self.attempts.iter().min_by_key(|attempt| attempt.rank())
    }

    /// Whether any attempt sent credentials (oauth or basic).
    pub fn credentials_sent(&self) -> bool {
        self.attempts.iter().any(|attempt| matches!(attempt.credentials, Some(Credentials::Oauth | Credentials::Basic)))
    }

    /// Whether every attempt whose credentials are known was anonymous, and there was at
    /// least one such attempt: the credential provider produced nothing.
    pub fn only_anonymous(&self) -> bool {
        let mut known = self.attempts.iter().filter_map(|attempt| attempt.credentials).peekable();
        known.peek().is_some() && known.all(|credentials| credentials == Credentials::Anonymous)
    }

    /// The HTTP status of the most telling attempt, when it states one.
    pub fn status(&self) -> Option<u16> {
        self.most_telling().and_then(|attempt| attempt.status)
    }
}

/// The message around the error: its kind, quoted image, error text and secrets.
struct Envelope<'a> {
    kind: MessageKind,
    quoted_image: Option<&'a str>,
    error: Option<&'a str>,
    secret_names: Vec<String>,
}

impl<'a> Envelope<'a> {
    fn read(text: &'a str) -> Envelope<'a> {
        if let Some(rest) = after(text, SECRETS) {
            let names = rest.split(')').next().unwrap_or_default();
            return Envelope {
                kind: MessageKind::PullSecretMissing,
                quoted_image: None,
                error: None,
                secret_names: names
                    .split(',')
                    .map(str::trim)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect(),
            };
        }
        if let Some(rest) = after(text, FAILED_TO_PULL) {
            let (image, error) = quoted(rest);
            return Envelope {
                kind: MessageKind::FailedToPull,
                quoted_image: image,
                error: non_empty(error.trim_start_matches(':')),
                secret_names: Vec::new(),
            };
        }
        if let Some(rest) = after(text, BACK_OFF) {
            let (image, error) = quoted(rest);
            let error = error.trim_start_matches(':').trim_start();
            let error =
                REASONS.iter().find_map(|reason| error.strip_prefix(reason)?.strip_prefix(':')).unwrap_or(error);
            return Envelope {
                kind: MessageKind::BackOff,
                quoted_image: image,
                error: non_empty(error),
                secret_names: Vec::new(),
            };
        }
        // `Error: ErrImagePull`, possibly after a `kubectl describe` event prefix, or the
        // bare reason.
        let reason = text.rsplit_once("Error:").map_or(text, |(_, reason)| reason.trim());
        let kind = match reason {
            ERR_IMAGE_PULL => MessageKind::ErrImagePull,
            IMAGE_PULL_BACK_OFF => MessageKind::ImagePullBackOff,
            _ => MessageKind::Raw,
        };
        Envelope {
            kind,
            quoted_image: None,
            error: if kind == MessageKind::Raw { non_empty(text) } else { None },
            secret_names: Vec::new(),
        }
    }
}

/// The text after the first occurrence of `marker`.
fn after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    text.find(marker).and_then(|at| text.get(at + marker.len()..))
}

/// Splits `IMG"REST` at the closing quote; without one there is no image.
fn quoted(rest: &str) -> (Option<&str>, &str) {
    match rest.split_once('"') {
        Some((image, error)) => (Some(image), error),
        None => (None, rest),
    }
}

fn non_empty(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty()).then_some(text)
}

fn looks_like_error(text: &str) -> bool {
    let lower = text.to_lowercase();
    ERROR_WORDS.iter().any(|word| lower.contains(word))
}

/// Splits an error into attempts with the gRPC code of an enclosing prefix, if any.
///
/// `[a, b]` is the kubelet's aggregate of one error per credential tried; it is split at
/// each top-level `, ` that starts a new error (`rpc error:`, `failed to pull and
/// unpack image`, ...), so commas inside one error never split it.
fn split_attempts(error: &str) -> Vec<(Option<String>, &str)> {
    let (outer_code, inner) = strip_rpc(error);
    let Some(list) = inner.strip_prefix('[') else {
        return vec![(None, error.trim())];
    };
    let list = list.strip_suffix(']').unwrap_or(list);

    let mut parts = Vec::new();
    let mut start = 0;
    for (at, _) in list.match_indices(", ") {
        let next = list.get(at + 2..).unwrap_or_default();
        if at >= start && ATTEMPT_STARTS.iter().any(|s| next.starts_with(s)) {
            parts.push(list.get(start..at).unwrap_or_default());
            start = at + 2;
        }
    }
    parts.push(list.get(start..).unwrap_or_default());

    parts.into_iter().map(str::trim).filter(|part| !part.is_empty()).map(|part| (outer_code.clone(), part)).collect()
}
