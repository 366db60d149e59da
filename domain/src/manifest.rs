//! Parsing of pushed manifests: what they are and which content they need.
//!
//! The registry stores manifests byte for byte; it parses them only to learn
//! their media type and the blobs, child manifests and subject they reference.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::DomainError;

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform or artifact index).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Non-distributable layers (Docker's foreign layers and OCI's
/// non-distributable ones): the manifest may say where they live, they are
/// never pushed, so a registry neither needs nor counts them.
const FOREIGN_LAYERS: [&str; 4] = [
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// What a manifest references, as learned from its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedManifest {
    /// The manifest's media type (one of the four supported).
    pub media_type: String,
    /// Config and layer blobs that must already be in the repository.
    pub blobs: Vec<Digest>,
    /// Child manifests of an index that must already be in the repository.
    pub manifests: Vec<Digest>,
    /// The manifest this one refers to (referrers API).
    pub subject: Option<Digest>,
    /// The artifact type reported by the referrers API.
    pub artifact_type: Option<String>,
    /// Manifest-level annotations, reported by the referrers API.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// One platform entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    /// The platform's manifest.
    pub digest: Digest,
    /// Operating system, when the index says.
    pub os: Option<String>,
    /// CPU architecture, when the index says.
    pub architecture: Option<String>,
    /// CPU variant, when the index says.
    pub variant: Option<String>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

#[derive(Deserialize)]
struct RawEntry {
    digest: String,
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    manifests: Vec<RawEntry>,
}

/// The platforms an index (or manifest list) names, in its order; nothing
/// for a body that is not one. Only stored, already-validated manifests are
/// read this way.
pub fn platforms(body: &[u8]) -> Vec<Platform> {
    let Ok(index) = serde_json::from_slice::<RawIndex>(body) else {
        return Vec::new();
    };
    index
        .manifests
        .into_iter()
        .filter_map(|e| {
            let digest = Digest::parse(&e.digest).ok()?;
            let p = e.platform;
            Some(Platform {
                digest,
                os: p.as_ref().and_then(|p| p.os.clone()),
                architecture: p.as_ref().and_then(|p| p.architecture.clone()),
                variant: p.and_then(|p| p.variant),
            })
        })
        .collect()
}

fn invalid(msg: impl Into<String>) -> DomainError {
    DomainError::ManifestInvalid(msg.into())
}

fn descriptor_digest(d: &RawDescriptor, what: &str) -> Result<Digest, DomainError> {
    if d.size < 0 {
        return Err(invalid(format!("{what} has a negative size")));
    }
    Digest::parse(&d.digest).map_err(|e| invalid(format!("{what}: {e}")))
}

/// The media type without parameters, or `None` for a generic JSON type that
/// tells nothing about the manifest kind.
fn specific_type(content_type: Option<&str>) -> Option<&str> {
    let t = content_type?.split(';').next()?.trim();
    match t {
        "" | "application/json" | "application/octet-stream" => None,
        t => Some(t),
    }
}

/// Parses a manifest body pushed with the given `Content-Type`.
pub fn parse_manifest(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ParsedManifest, DomainError> {
    let raw: RawManifest = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(invalid(
            "only schemaVersion 2 manifests are supported (Docker schema 1 is not)",
        ));
    }
    let header = specific_type(content_type);
    if let (Some(h), Some(b)) = (header, raw.media_type.as_deref()) {
        if h != b {
            return Err(invalid(format!(
                "Content-Type {h} does not match the manifest's mediaType {b}"
            )));
        }
    }
    let media_type = match header.or(raw.media_type.as_deref()) {
        Some(t) => t.to_owned(),
        None if raw.manifests.is_some() => OCI_INDEX.to_owned(),
        None => OCI_MANIFEST.to_owned(),
    };
    let subject = raw
        .subject
        .as_ref()
        .map(|s| descriptor_digest(s, "subject"))
        .transpose()?;
    let mut blobs = Vec::new();
    let mut manifests = Vec::new();
    let artifact_type;
    match media_type.as_str() {
        DOCKER_MANIFEST | OCI_MANIFEST => {
            let config = raw
                .config
                .as_ref()
                .ok_or_else(|| invalid("image manifest has no config"))?;
            blobs.push(descriptor_digest(config, "config")?);
            let layers = raw
                .layers
                .as_ref()
                .ok_or_else(|| invalid("image manifest has no layers"))?;
            for layer in layers {
                let digest = descriptor_digest(layer, "layer")?;
                let foreign = layer
                    .media_type
                    .as_deref()
                    .is_some_and(|t| FOREIGN_LAYERS.contains(&t));
                if !foreign {
                    blobs.push(digest);
                }
            }
            if raw.manifests.is_some() {
                return Err(invalid("image manifest must not hold manifests"));
            }
            artifact_type = raw.artifact_type.or(config.media_type.clone());
        }
        DOCKER_MANIFEST_LIST | OCI_INDEX => {
            let children = raw
                .manifests
                .as_ref()
                .ok_or_else(|| invalid("index has no manifests"))?;
            for child in children {
                manifests.push(descriptor_digest(child, "child manifest")?);
            }
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(invalid("index must not hold config or layers"));
            }
            artifact_type = raw.artifact_type;
        }
        other => {
            return Err(invalid(format!(
                "manifest media type {other} is not supported"
            )))
        }
    }
    Ok(ParsedManifest {
        media_type,
        blobs,
        manifests,
        subject,
        artifact_type,
        annotations: raw.annotations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(media: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{media}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"x","digest":"{}","size":3}}]}}"#,
            d('a'),
            d('b')
        )
    }

    #[test]
    fn image_manifest_lists_config_and_layers() {
        let m = parse_manifest(Some(OCI_MANIFEST), image(OCI_MANIFEST).as_bytes()).unwrap();
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(m.blobs.len(), 2);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn non_distributable_layers_are_not_required() {
        for media in FOREIGN_LAYERS {
            let body = format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"x","digest":"{}","size":1}},"layers":[{{"mediaType":"{media}","digest":"{}","size":5}},{{"mediaType":"l","digest":"{}","size":2}}]}}"#,
                d('a'),
                d('b'),
                d('c')
            );
            let m = parse_manifest(None, body.as_bytes()).unwrap();
            let needed: Vec<String> = m.blobs.iter().map(ToString::to_string).collect();
            assert_eq!(needed, [d('a'), d('c')], "{media}");
        }
    }

    #[test]
    fn header_and_body_must_agree() {
        let e = parse_manifest(Some(OCI_INDEX), image(OCI_MANIFEST).as_bytes()).unwrap_err();
        assert!(matches!(e, DomainError::ManifestInvalid(_)));
        let m = parse_manifest(Some("application/json"), image(DOCKER_MANIFEST).as_bytes());
        assert_eq!(m.unwrap().media_type, DOCKER_MANIFEST);
    }

    #[test]
    fn index_lists_children_and_subject() {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":9}}}}"#,
            d('c'),
            d('e')
        );
        let m = parse_manifest(None, body.as_bytes()).unwrap();
        assert_eq!(m.manifests, vec![Digest::parse(&d('c')).unwrap()]);
        assert_eq!(m.subject, Some(Digest::parse(&d('e')).unwrap()));
    }

    #[test]
    fn refuses_garbage_schema1_and_bad_digests() {
        assert!(parse_manifest(None, b"not json").is_err());
        assert!(parse_manifest(None, br#"{"schemaVersion":1}"#).is_err());
        let bad = image(OCI_MANIFEST).replace(&d('b'), "sha256:nothex");
        assert!(parse_manifest(None, bad.as_bytes()).is_err());
        let unknown = image("application/x-unknown");
        assert!(parse_manifest(None, unknown.as_bytes()).is_err());
    }
}
