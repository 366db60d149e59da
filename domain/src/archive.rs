//! What a `docker save` archive means, once its members are known: the
//! images it holds, the names they get inside an organization, and the
//! Docker schema 2 manifest each becomes. Pure: the members' bytes are read
//! by the store, which hands small JSON members here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::DomainError;
use crate::names::{RepoName, TagName};

/// Media type of the manifests built for uploaded images.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Media type of their configs.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
/// A layer as `docker save` writes it: an uncompressed tar.
pub const LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// A layer that is already gzip-compressed in the archive.
pub const LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The annotation containerd and Docker 25+ put on an index entry: the
/// image's full reference.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation: a tag, or a full reference.
const OCI_REF_NAME: &str = "org.opencontainers.image.ref.name";

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::ArchiveInvalid(message.into())
}

/// One entry of the legacy `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LegacyEntry {
    /// Member holding the image config.
    pub config: String,
    /// The names the image was saved under.
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    /// Members holding the layers, base first.
    pub layers: Vec<String>,
}

/// Parses `manifest.json`.
pub fn legacy_manifest(bytes: &[u8]) -> Result<Vec<LegacyEntry>, DomainError> {
    serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest.json is not a docker save manifest: {e}")))
}

/// Parses the legacy `repositories` member: repository, then tag, then the
/// id of the image's top layer.
pub fn legacy_repositories(
    bytes: &[u8],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, DomainError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("repositories is not valid: {e}")))
}

/// A content descriptor of the OCI image layout.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciDescriptor {
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Annotations (names, on index entries).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct OciIndex {
    manifests: Vec<OciDescriptor>,
}

/// An image manifest of the OCI layout, as far as an upload reads it.
#[derive(Debug, Deserialize)]
pub struct OciManifest {
    /// The config.
    pub config: OciDescriptor,
    /// The layers, base first.
    pub layers: Vec<OciDescriptor>,
}

/// Parses `index.json`: its image entries. A nested index (several
/// platforms) is refused: one platform is what `docker save` writes.
pub fn oci_index(bytes: &[u8]) -> Result<Vec<OciDescriptor>, DomainError> {
    let index: OciIndex = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("index.json is not an OCI image index: {e}")))?;
    for entry in &index.manifests {
        if entry.media_type.contains("index") || entry.media_type.contains("manifest.list") {
            return Err(invalid(format!(
                "index.json names {}, an index of several platforms; upload an archive of one platform",
                entry.digest
            )));
        }
    }
    Ok(index.manifests)
}

/// Parses an OCI image manifest held in the archive.
pub fn oci_manifest(bytes: &[u8], digest: &str) -> Result<OciManifest, DomainError> {
    serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest {digest} is not an image manifest: {e}")))
}

/// The archive member that holds a blob of the OCI layout.
pub fn blob_member(digest: &str) -> Result<String, DomainError> {
    let d = Digest::parse(digest)
        .map_err(|e| invalid(format!("index.json names a bad digest {digest:?}: {e}")))?;
    Ok(format!("blobs/{}/{}", d.algorithm().as_str(), d.hex()))
}

/// The names an OCI index entry carries, as full references.
pub fn oci_names(entry: &OciDescriptor) -> Vec<String> {
    if let Some(name) = entry.annotations.get(CONTAINERD_NAME) {
        return vec![name.clone()];
    }
    match entry.annotations.get(OCI_REF_NAME) {
        Some(name) => vec![name.clone()],
        None => Vec::new(),
    }
}

/// The repository and tag an image saved as `reference` gets inside the
/// chosen organization: the registry host and the path before the last
/// part are dropped (`registry.example.com/team/app:v1` becomes `app:v1`).
/// A reference without a tag is refused, as is a name the registry's
/// naming rules refuse; the message quotes the name and the rule.
pub fn image_name(reference: &str) -> Result<(RepoName, TagName), DomainError> {
    let without_digest = reference.split('@').next().unwrap_or_default();
    let last = without_digest.rsplit('/').next().unwrap_or_default();
    let Some((name, tag)) = last.split_once(':') else {
        return Err(invalid(format!(
            "image {reference:?} has no tag; tag it before `docker save` (for example {last}:latest)"
        )));
    };
    let name = RepoName::parse(name)
        .map_err(|e| invalid(format!("image name {reference:?} is refused: {e}")))?;
    let tag = TagName::parse(tag)
        .map_err(|e| invalid(format!("image name {reference:?} is refused: {e}")))?;
    Ok((name, tag))
}

/// The part of an image config an upload checks.
#[derive(Deserialize)]
struct Config {
    rootfs: RootFs,
}

#[derive(Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// Checks that a config's diff ids are exactly the digests of the layers'
/// uncompressed contents, in order.
pub fn check_diff_ids(
    config: &[u8],
    config_member: &str,
    layers: &[(String, Digest)],
) -> Result<(), DomainError> {
    let parsed: Config = serde_json::from_slice(config).map_err(|e| {
        invalid(format!(
            "config {config_member} is not an image config: {e}"
        ))
    })?;
    if parsed.rootfs.diff_ids.len() != layers.len() {
        return Err(invalid(format!(
            "config {config_member} lists {} diff ids for {} layers",
            parsed.rootfs.diff_ids.len(),
            layers.len()
        )));
    }
    for (i, (expected, (member, actual))) in parsed.rootfs.diff_ids.iter().zip(layers).enumerate() {
        if expected != &actual.to_string() {
            return Err(invalid(format!(
                "layer {} ({member}) has diff id {actual}, but the config expects {expected}",
                i + 1
            )));
        }
    }
    Ok(())
}

/// A blob an uploaded manifest references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blob {
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: &'static str,
    /// Its size in bytes.
    pub size: u64,
    /// Its digest.
    pub digest: Digest,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Schema2<'a> {
    schema_version: u8,
    media_type: &'static str,
    config: &'a Blob,
    layers: &'a [Blob],
}

/// The Docker schema 2 manifest of an uploaded image: the same JSON a
/// client would push for these blobs.
pub fn schema2_manifest(config: &Blob, layers: &[Blob]) -> Vec<u8> {
    serde_json::to_vec_pretty(&Schema2 {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config,
        layers,
    })
    .expect("a manifest of plain fields encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_keeps_its_last_path_part_and_tag() {
        for (reference, name, tag) in [
            ("2048-demo:v1", "2048-demo", "v1"),
            ("registry.example.com:5000/team/app:1.0", "app", "1.0"),
            ("docker.io/library/busybox:latest", "busybox", "latest"),
        ] {
            let (n, t) = image_name(reference).unwrap();
            assert_eq!((n.as_str(), t.as_str()), (name, tag), "{reference}");
        }
    }

    #[test]
    fn an_untagged_or_misnamed_reference_is_refused_with_the_name() {
        let e = image_name("registry.example.com:5000/team/app").unwrap_err();
        assert!(e.to_string().contains("has no tag"), "{e}");
        let e = image_name("Team/App:v1").unwrap_err();
        assert!(e.to_string().contains("\"Team/App:v1\""), "{e}");
        let e = image_name("app:-bad").unwrap_err();
        assert!(e.to_string().contains("app:-bad"), "{e}");
    }

    #[test]
    fn diff_ids_must_match_the_layers_in_order() {
        let a = Digest::parse(&format!("sha256:{}", "a".repeat(64))).unwrap();
        let b = Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap();
        let config = format!(r#"{{"rootfs":{{"type":"layers","diff_ids":["{a}","{b}"]}}}}"#);
        let layers = vec![
            ("1/layer.tar".to_owned(), a.clone()),
            ("2/layer.tar".to_owned(), b.clone()),
        ];
        check_diff_ids(config.as_bytes(), "c.json", &layers).unwrap();
        let swapped = vec![layers[1].clone(), layers[0].clone()];
        let e = check_diff_ids(config.as_bytes(), "c.json", &swapped).unwrap_err();
        assert!(e.to_string().contains("layer 1 (2/layer.tar)"), "{e}");
    }
}
