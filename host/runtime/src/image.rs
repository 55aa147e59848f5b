//! OCI images built locally, with no internet, byte-for-byte deterministic.
//!
//! Every image is an OCI image index (so that containerd checks platforms at resolve time, which
//! is what makes the platform-mismatch symptom appear) with one manifest per platform; each
//! manifest has one gzip tar layer holding `hello.txt` (and, for Linux platforms of an image
//! that has a [`Program`], that static binary as its entrypoint, so its containers really run)
//! and an OCI config.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use hyper::body::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::registry::{PushReport, RegistryApiError, RegistryClient, hex};

/// OCI image index media type.
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type.
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// `os.version` given to Windows platforms that do not name one (Windows Server 2022, the base
/// of AKS Windows node pools).
pub const DEFAULT_WINDOWS_OS_VERSION: &str = "10.0.20348.2113";

/// A bad image description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageSpecError {
    /// A platform that is not `os/architecture[/variant]`.
    #[error("platform {0:?} is not os/architecture[/variant] (e.g. linux/amd64, windows/amd64)")]
    Platform(String),
    /// No platforms.
    #[error("image {0} has no platform")]
    NoPlatform(String),
    /// A repository or tag the registry would reject.
    #[error("invalid {what} {value:?}")]
    Name {
        /// `repository` or `tag`.
        what: &'static str,
        /// The value.
        value: String,
    },
}

/// An image platform as in an OCI index entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Platform {
    /// CPU architecture (`amd64`).
    pub architecture: String,
    /// Operating system (`linux`, `windows`).
    pub os: String,
    /// `os.version` (Windows builds).
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// CPU variant (`v8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`.
    pub fn linux_amd64() -> Self {
        "linux/amd64".parse().expect("valid platform")
    }

    /// `windows/amd64` with [`DEFAULT_WINDOWS_OS_VERSION`].
    pub fn windows_amd64() -> Self {
        "windows/amd64".parse().expect("valid platform")
    }
}

impl FromStr for Platform {
    type Err = ImageSpecError;

    /// `os/arch[/variant]`; Windows gets [`DEFAULT_WINDOWS_OS_VERSION`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            return Err(ImageSpecError::Platform(s.to_string()));
        }
        Ok(Self {
            architecture: parts[1].to_string(),
            os: parts[0].to_string(),
            os_version: (parts[0] == "windows").then(|| DEFAULT_WINDOWS_OS_VERSION.to_string()),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// What to build: `repository:tag` as an index over `platforms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Repository path inside the registry (`pullproof/hello`).
    pub repository: String,
    /// Tag (`1.0`).
    pub tag: String,
    /// One manifest per platform, in this order.
    pub platforms: Vec<Platform>,
    /// The static program Linux platforms run (none: the image only holds `hello.txt`).
    pub program: Option<Program>,
}

/// A static Linux binary an image carries and runs.
#[derive(Clone, PartialEq, Eq)]
pub struct Program {
    /// Where it lives in the image (`/bin/busybox`).
    pub path: String,
    /// Its bytes.
    pub binary: std::sync::Arc<Vec<u8>>,
    /// The arguments after the path (`sleep 86400`).
    pub args: Vec<String>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("path", &self.path)
            .field("bytes", &self.binary.len())
            .field("args", &self.args)
            .finish()
    }
}

/// Where Debian's `busybox-static` puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

impl Program {
    /// Debian's static busybox (package `busybox-static`), running `args`. Fails if the file is
    /// missing or dynamically linked (the `busybox` package's build would not run in an image).
    pub fn busybox(args: &[&str]) -> std::io::Result<Self> {
        let binary = std::fs::read(BUSYBOX)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{BUSYBOX}: {e} (apt-get install busybox-static)")))?;
        if is_dynamic_elf(&binary) {
            return Err(std::io::Error::other(format!(
                "{BUSYBOX} is dynamically linked: install busybox-static instead of busybox"
            )));
        }
        Ok(Self {
            path: "/bin/busybox".into(),
            binary: std::sync::Arc::new(binary),
            args: args.iter().map(|a| a.to_string()).collect(),
        })
    }
}

/// Whether an ELF file asks for a program interpreter (`PT_INTERP`), i.e. is dynamically linked.
fn is_dynamic_elf(b: &[u8]) -> bool {
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8])) as usize;
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) == 3
    })
}

impl ImageSpec {
    /// Parses platform strings (`"linux/amd64"`, `"windows/amd64"`) and checks the names.
    pub fn new(
        repository: impl Into<String>,
        tag: impl Into<String>,
        platforms: &[&str],
    ) -> Result<Self, ImageSpecError> {
        let spec = Self {
            repository: repository.into(),
            tag: tag.into(),
            platforms: platforms.iter().map(|p| p.parse()).collect::<Result<_, _>>()?,
            program: None,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// The same image, running `program` on Linux platforms.
    pub fn with_program(mut self, program: Program) -> Self {
        self.program = Some(program);
        self
    }

    /// Checks the repository and tag grammar of the distribution spec and that there is a platform.
    pub fn validate(&self) -> Result<(), ImageSpecError> {
        let component_ok = |c: &str| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
        };
        if self.repository.len() > 255 || !self.repository.split('/').all(component_ok) {
            return Err(ImageSpecError::Name { what: "repository", value: self.repository.clone() });
        }
        let t = self.tag.as_bytes();
        let tag_ok = !t.is_empty()
            && t.len() <= 128
            && (t[0].is_ascii_alphanumeric() || t[0] == b'_')
            && t.iter().all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c));
        if !tag_ok {
            return Err(ImageSpecError::Name { what: "tag", value: self.tag.clone() });
        }
        if self.platforms.is_empty() {
            return Err(ImageSpecError::NoPlatform(format!("{}:{}", self.repository, self.tag)));
        }
        Ok(())
    }

    /// Builds the image in memory. Same spec, same bytes, same digests.
    pub fn build(&self) -> Result<BuiltImage, ImageSpecError> {
        self.validate()?;
        let mut blobs: Vec<Blob> = Vec::new();
        let mut manifests = Vec::new();
        let mut entries = Vec::new();
        for platform in &self.platforms {
            let content = format!("hello from pullproof: {}:{} ({platform})\n", self.repository, self.tag);
            let mut files: Vec<(&str, u32, &[u8])> = vec![("hello.txt", 0o644, content.as_bytes())];
            let program = self.program.as_ref().filter(|_| platform.os == "linux");
            let cmd: Vec<&str> = match program {
                Some(p) => {
                    files.push((p.path.trim_start_matches('/'), 0o755, p.binary.as_slice()));
                    std::iter::once(p.path.as_str()).chain(p.args.iter().map(String::as_str)).collect()
                }
                None => vec!["/hello.txt"],
            };
            let tar = tar_files(&files);
            let diff_id = sha256_digest(&tar);
            let layer = Blob::new(MEDIA_LAYER_GZIP, gzip(&tar));
            let config = OciConfig {
                architecture: &platform.architecture,
                os: &platform.os,
                os_version: platform.os_version.as_deref(),
                variant: platform.variant.as_deref(),
                config: ExecConfig { cmd, labels: Labels { source: "pullproof" } },
                rootfs: RootFs { kind: "layers", diff_ids: vec![diff_id] },
            };
            let config = Blob::new(MEDIA_CONFIG, json(&config));
            let manifest = Manifest {
                schema_version: 2,
                media_type: MEDIA_MANIFEST,
                config: &config.descriptor,
                layers: vec![&layer.descriptor],
            };
            let manifest = Blob::new(MEDIA_MANIFEST, json(&manifest));
            entries.push(IndexEntry { descriptor: manifest.descriptor.clone(), platform: platform.clone() });
            for b in [layer, config] {
                if !blobs.iter().any(|x| x.descriptor.digest == b.descriptor.digest) {
                    blobs.push(b);
                }
            }
            manifests.push(PlatformManifest {
                platform: platform.clone(),
                descriptor: manifest.descriptor,
                bytes: manifest.bytes,
            });
        }
        let index = Index { schema_version: 2, media_type: MEDIA_INDEX, manifests: entries };
        Ok(BuiltImage {
            repository: self.repository.clone(),
            tag: self.tag.clone(),
            blobs,
            manifests,
            index: Blob::new(MEDIA_INDEX, json(&index)),
        })
    }
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    /// Media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// A blob with its descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Its descriptor.
    pub descriptor: Descriptor,
    /// Its bytes.
    pub bytes: Bytes,
}

impl Blob {
    fn new(media_type: &str, bytes: Vec<u8>) -> Self {
        Self {
            descriptor: Descriptor {
                media_type: media_type.to_string(),
                digest: sha256_digest(&bytes),
                size: bytes.len() as u64,
            },
            bytes: Bytes::from(bytes),
        }
    }
}

/// One platform's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformManifest {
    /// Its platform.
    pub platform: Platform,
    /// Its descriptor.
    pub descriptor: Descriptor,
    /// The manifest JSON.
    pub bytes: Bytes,
}

/// A built image: layers and configs, the platform manifests, and the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Repository path.
    pub repository: String,
    /// Tag the index is pushed under.
    pub tag: String,
    /// Layers and configs (deduplicated).
    pub blobs: Vec<Blob>,
    /// One manifest per platform, in the spec's order.
    pub manifests: Vec<PlatformManifest>,
    /// The image index (what the tag points at).
    pub index: Blob,
}

impl BuiltImage {
    /// The index digest.
    pub fn digest(&self) -> &str {
        &self.index.descriptor.digest
    }

    /// `host/repository:tag` for a registry reached as `host` (e.g. `myacr.azurecr.io`).
    pub fn reference(&self, host: &str) -> String {
        format!("{host}/{}:{}", self.repository, self.tag)
    }

    /// `host/repository@digest`.
    pub fn digest_reference(&self, host: &str) -> String {
        format!("{host}/{}@{}", self.repository, self.digest())
    }

    /// An OCI image layout archive (a tar of `oci-layout`, `index.json` and `blobs/`) naming the
    /// image `name`, as `ctr images import` reads it: how an image reaches a node with no
    /// registry (the pause image).
    pub fn oci_archive(&self, name: &str) -> Vec<u8> {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [{
                "mediaType": MEDIA_INDEX,
                "digest": self.index.descriptor.digest,
                "size": self.index.descriptor.size,
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": self.tag,
                },
            }],
        });
        let index = serde_json::to_vec(&index).unwrap_or_default();
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec();
        let mut blobs: Vec<(String, &[u8])> = Vec::new();
        let all = self.blobs.iter().map(|b| (&b.descriptor.digest, b.bytes.as_ref()));
        let manifests = self.manifests.iter().map(|m| (&m.descriptor.digest, m.bytes.as_ref()));
        for (digest, bytes) in all.chain(manifests).chain([(&self.index.descriptor.digest, self.index.bytes.as_ref())])
        {
            let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
            if !blobs.iter().any(|(p, _)| *p == path) {
                blobs.push((path, bytes));
            }
        }
        let mut files: Vec<(&str, u32, &[u8])> =
            vec![("oci-layout", 0o644, layout.as_slice()), ("index.json", 0o644, index.as_slice())];
        files.extend(blobs.iter().map(|(p, b)| (p.as_str(), 0o644, *b)));
        tar_files(&files)
    }
}

/// Builds `spec` and pushes it over the registry's Unix socket, with `Authorization: Bearer` if a
/// token (with push scope for the repository) is given.
pub async fn push(
    registry_socket: &Path,
    spec: &ImageSpec,
    bearer_token: Option<&str>,
) -> Result<(BuiltImage, PushReport), PushError> {
    let image = spec.build()?;
    let mut client = RegistryClient::unix(registry_socket);
    if let Some(t) = bearer_token {
        client = client.with_bearer(t);
    }
    let report = client.push(&image).await?;
    Ok((image, report))
}

/// Lists a repository's tags over the registry's Unix socket.
pub async fn list_tags(
    registry_socket: &Path,
    repository: &str,
    bearer_token: Option<&str>,
) -> Result<Vec<String>, RegistryApiError> {
    let mut client = RegistryClient::unix(registry_socket);
    if let Some(t) = bearer_token {
        client = client.with_bearer(t);
    }
    client.list_tags(repository).await
}

/// [`push`] failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PushError {
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] ImageSpecError),
    /// The registry refused or could not be reached.
    #[error(transparent)]
    Registry(#[from] RegistryApiError),
}

#[derive(Serialize)]
struct OciConfig<'a> {
    architecture: &'a str,
    os: &'a str,
    #[serde(rename = "os.version", skip_serializing_if = "Option::is_none")]
    os_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: ExecConfig<'a>,
    rootfs: RootFs,
}

#[derive(Serialize)]
struct ExecConfig<'a> {
    #[serde(rename = "Cmd")]
    cmd: Vec<&'a str>,
    #[serde(rename = "Labels")]
    labels: Labels<'a>,
}

#[derive(Serialize)]
struct Labels<'a> {
    #[serde(rename = "org.opencontainers.image.source")]
    source: &'a str,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'a str,
    config: &'a Descriptor,
    layers: Vec<&'a Descriptor>,
}

#[derive(Serialize)]
struct Index {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: Vec<IndexEntry>,
}

#[derive(Serialize)]
struct IndexEntry {
    #[serde(flatten)]
    descriptor: Descriptor,
    platform: Platform,
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("plain structs serialize")
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// gzip with a fixed header (mtime 0, no name), so the output depends only on the input.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("writing to a Vec");
    enc.finish().expect("writing to a Vec")
}

/// A POSIX ustar archive with one regular file (mode 0644, root-owned, mtime 0).
#[cfg(test)]
fn tar_one_file(name: &str, data: &[u8]) -> Vec<u8> {
    tar_files(&[(name, 0o644, data)])
}

/// A POSIX ustar archive of regular files `(name, mode, bytes)`, root-owned, mtime 0; a file
/// below a folder gets that folder first (mode 0755).
fn tar_files(files: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut folders: Vec<String> = Vec::new();
    for (name, mode, data) in files {
        let mut prefix = String::new();
        for part in name.split('/').collect::<Vec<_>>().split_last().map(|(_, dirs)| dirs.to_vec()).unwrap_or_default()
        {
            prefix.push_str(part);
            prefix.push('/');
            if !folders.contains(&prefix) {
                out.extend_from_slice(&tar_header(&prefix, 0o755, 0, b'5'));
                folders.push(prefix.clone());
            }
        }
        out.extend_from_slice(&tar_header(name, *mode, data.len(), b'0'));
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn tar_header(name: &str, mode: u32, size: usize, kind: u8) -> [u8; 512] {
    assert!(name.len() < 100, "tar name too long");
    let mut h = [0u8; 512];
    let put = |h: &mut [u8; 512], off: usize, s: &[u8]| h[off..off + s.len()].copy_from_slice(s);
    put(&mut h, 0, name.as_bytes());
    put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, b"00000000000\0");
    put(&mut h, 148, b"        ");
    h[156] = kind;
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    put(&mut h, 265, b"root");
    put(&mut h, 297, b"root");
    put(&mut h, 329, b"0000000\0");
    put(&mut h, 337, b"0000000\0");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse() {
        let w: Platform = "windows/amd64".parse().unwrap();
        assert_eq!(w.os, "windows");
        assert_eq!(w.os_version.as_deref(), Some(DEFAULT_WINDOWS_OS_VERSION));
        let a: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(a.variant.as_deref(), Some("v8"));
        assert_eq!(a.to_string(), "linux/arm64/v8");
        for bad in ["linux", "linux/", "Linux/amd64", "a/b/c/d"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(ImageSpec::new("pullproof/hello", "1.0", &["linux/amd64"]).is_ok());
        assert!(ImageSpec::new("Pullproof/hello", "1.0", &["linux/amd64"]).is_err());
        assert!(ImageSpec::new("pullproof/hello", "-x", &["linux/amd64"]).is_err());
        assert!(ImageSpec::new("pullproof/hello", "1.0", &[]).is_err());
    }

    #[test]
    fn builds_are_deterministic_and_consistent() {
        let spec = ImageSpec::new("pullproof/hello", "1.0", &["linux/amd64", "windows/amd64"]).unwrap();
        let a = spec.build().unwrap();
        let b = spec.build().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.manifests.len(), 2);
        assert_eq!(a.blobs.len(), 4);
        for blob in a.blobs.iter().chain([&a.index]) {
            assert_eq!(sha256_digest(&blob.bytes), blob.descriptor.digest);
            assert_eq!(blob.bytes.len() as u64, blob.descriptor.size);
        }
        let index: serde_json::Value = serde_json::from_slice(&a.index.bytes).unwrap();
        assert_eq!(index["mediaType"], MEDIA_INDEX);
        assert_eq!(index["manifests"][0]["platform"]["os"], "linux");
        assert_eq!(index["manifests"][1]["platform"]["os"], "windows");
        assert_eq!(index["manifests"][1]["platform"]["os.version"], DEFAULT_WINDOWS_OS_VERSION);
        assert_eq!(index["manifests"][1]["digest"], a.manifests[1].descriptor.digest.as_str());
        let m: serde_json::Value = serde_json::from_slice(&a.manifests[0].bytes).unwrap();
        let config_digest = m["config"]["digest"].as_str().unwrap();
        let config = a.blobs.iter().find(|b| b.descriptor.digest == config_digest).unwrap();
        let c: serde_json::Value = serde_json::from_slice(&config.bytes).unwrap();
        assert_eq!(c["os"], "linux");
        assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(a.reference("127.0.0.1:5000"), "127.0.0.1:5000/pullproof/hello:1.0");
    }

    #[test]
    fn a_program_runs_on_linux_platforms_only() {
        let program = Program {
            path: "/bin/tool".into(),
            binary: std::sync::Arc::new(b"ELF".to_vec()),
            args: vec!["run".into()],
        };
        let a = ImageSpec::new("app", "v1", &["linux/amd64", "windows/amd64"])
            .unwrap()
            .with_program(program)
            .build()
            .unwrap();
        let configs: Vec<serde_json::Value> = a
            .blobs
            .iter()
            .filter(|b| b.descriptor.media_type == MEDIA_CONFIG)
            .map(|b| serde_json::from_slice(&b.bytes).unwrap())
            .collect();
        let linux = configs.iter().find(|c| c["os"] == "linux").unwrap();
        assert_eq!(linux["config"]["Cmd"], serde_json::json!(["/bin/tool", "run"]));
        let windows = configs.iter().find(|c| c["os"] == "windows").unwrap();
        assert_eq!(windows["config"]["Cmd"], serde_json::json!(["/hello.txt"]));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("image.tar");
        std::fs::write(&p, a.oci_archive("example.invalid/app:v1")).unwrap();
        if let Ok(out) = std::process::Command::new("tar").arg("-tf").arg(&p).output() {
            let listing = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && listing.contains("index.json") && listing.contains("blobs/sha256/"),
                "{listing}"
            );
        }
    }

    #[test]
    fn the_layer_is_a_valid_tar_with_hello_txt() {
        let tar = tar_one_file("hello.txt", b"hi\n");
        assert_eq!(tar.len(), 512 * 4);
        assert_eq!(&tar[0..9], b"hello.txt");
        assert_eq!(&tar[512..515], b"hi\n");
        // checksum: header bytes with the checksum field read as spaces.
        let mut h = tar[..512].to_vec();
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        h[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, h.iter().map(|&b| u32::from(b)).sum::<u32>());
        // If GNU tar is around, it must agree.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.tar");
        std::fs::write(&p, &tar).unwrap();
        if let Ok(out) = std::process::Command::new("tar").arg("-tvf").arg(&p).output() {
            let listing = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert!(listing.contains("hello.txt"), "{listing}");
        }
    }
}
