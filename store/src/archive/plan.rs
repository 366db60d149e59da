//! What a staged archive means: the legacy and OCI layouts read, every
//! image checked and named, and its schema 2 manifest built.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use berth_domain::archive::{self, Blob, CONFIG_MEDIA_TYPE, LAYER_TAR, LAYER_TAR_GZIP};
use berth_domain::{Digest, RepoName, TagName};
use sha2::{Digest as _, Sha256};

use super::{invalid, sha256, too_large, Member, Staged};
use crate::error::StoreError;

/// Largest image config or OCI manifest, as for a pushed manifest.
const MAX_CONFIG: u64 = 4 << 20;

/// One image of an archive, ready to become a push.
#[derive(Debug, Clone)]
pub struct Image {
    /// The repositories and tags it gets, inside the chosen organization.
    pub names: Vec<(RepoName, TagName)>,
    /// The config blob, with its staged file.
    pub config: (Blob, PathBuf),
    /// The layer blobs, base first, with their staged files.
    pub layers: Vec<(Blob, PathBuf)>,
    /// The Docker schema 2 manifest built for it.
    pub manifest: Vec<u8>,
    /// That manifest's digest.
    pub digest: Digest,
}

impl Staged {
    fn member(&self, name: &str, named_by: &str) -> Result<&Member, StoreError> {
        self.members.get(name).ok_or_else(|| {
            invalid(format!(
                "{named_by} names {name}, which the archive does not hold"
            ))
        })
    }

    /// A small member's bytes (a config, an OCI manifest), capped.
    fn small(&self, name: &str, named_by: &str) -> Result<Vec<u8>, StoreError> {
        let member = self.member(name, named_by)?;
        if member.size > MAX_CONFIG {
            return Err(too_large(format!(
                "member {name} is larger than {MAX_CONFIG} bytes"
            )));
        }
        Ok(fs::read(&member.file)?)
    }

    /// Checks that an OCI layout blob hashes to the name it is stored
    /// under.
    fn check_blob(&self, name: &str) -> Result<(), StoreError> {
        let member = self.member(name, "index.json")?;
        if !name.ends_with(member.digest.hex()) {
            return Err(invalid(format!(
                "member {name} hashes to {}, not to its name",
                member.digest
            )));
        }
        Ok(())
    }
}

/// What a staged archive means: its images, each checked (every layer
/// present, the config's diff ids matching the layers) and named. Legacy
/// `manifest.json` is read when present (Docker writes it in both
/// layouts); an OCI layout without it is read from `index.json`.
pub fn plan(staged: &Staged) -> Result<Vec<Image>, StoreError> {
    let images = if let Some(bytes) = staged.metadata.get("manifest.json") {
        legacy_images(staged, bytes)?
    } else if let Some(bytes) = staged.metadata.get("index.json") {
        oci_images(staged, bytes)?
    } else {
        return Err(invalid(
            "the archive has neither manifest.json nor index.json: it is not a docker save archive",
        ));
    };
    if images.is_empty() {
        return Err(invalid("the archive holds no image"));
    }
    let mut seen = BTreeSet::new();
    for image in &images {
        for (repo, tag) in &image.names {
            if !seen.insert((repo.clone(), tag.clone())) {
                return Err(invalid(format!(
                    "{repo}:{tag} is the name of two images in the archive"
                )));
            }
        }
    }
    Ok(images)
}

/// The names of an image from its references; none is refused.
fn names(references: &[String], which: &str) -> Result<Vec<(RepoName, TagName)>, StoreError> {
    if references.is_empty() {
        return Err(invalid(format!(
            "image {which} has no name and tag in the archive; tag it before `docker save`"
        )));
    }
    references
        .iter()
        .map(|r| archive::image_name(r).map_err(StoreError::from))
        .collect()
}

fn legacy_images(staged: &Staged, bytes: &[u8]) -> Result<Vec<Image>, StoreError> {
    let repositories = match staged.metadata.get("repositories") {
        Some(b) => archive::legacy_repositories(b)?,
        None => BTreeMap::new(),
    };
    let mut images = Vec::new();
    for entry in archive::legacy_manifest(bytes)? {
        let mut references = entry.repo_tags.clone().unwrap_or_default();
        if references.is_empty() {
            // `repositories` names images by the id of their top layer,
            // the directory of the last layer's member.
            let top = entry
                .layers
                .last()
                .and_then(|l| l.rsplit_once('/'))
                .map(|(dir, _)| dir.to_owned());
            for (repo, tags) in &repositories {
                for (tag, id) in tags {
                    if Some(id) == top.as_ref() {
                        references.push(format!("{repo}:{tag}"));
                    }
                }
            }
        }
        let names = names(&references, &entry.config)?;
        images.push(image(
            staged,
            names,
            &entry.config,
            &entry.layers,
            "manifest.json",
        )?);
    }
    Ok(images)
}

fn oci_images(staged: &Staged, bytes: &[u8]) -> Result<Vec<Image>, StoreError> {
    let mut images = Vec::new();
    for entry in archive::oci_index(bytes)? {
        let names = names(&archive::oci_names(&entry), &entry.digest)?;
        let manifest_member = archive::blob_member(&entry.digest)?;
        staged.check_blob(&manifest_member)?;
        let manifest = archive::oci_manifest(
            &staged.small(&manifest_member, "index.json")?,
            &entry.digest,
        )?;
        let config = archive::blob_member(&manifest.config.digest)?;
        let layers = manifest
            .layers
            .iter()
            .map(|l| archive::blob_member(&l.digest))
            .collect::<Result<Vec<_>, _>>()?;
        for name in std::iter::once(&config).chain(&layers) {
            staged.check_blob(name)?;
        }
        images.push(image(staged, names, &config, &layers, &entry.digest)?);
    }
    Ok(images)
}

/// Checks one image's members and builds its manifest.
fn image(
    staged: &Staged,
    names: Vec<(RepoName, TagName)>,
    config: &str,
    layers: &[String],
    named_by: &str,
) -> Result<Image, StoreError> {
    let config_bytes = staged.small(config, named_by)?;
    let mut layer_ids = Vec::with_capacity(layers.len());
    let mut blobs = Vec::with_capacity(layers.len());
    for name in layers {
        let m = staged.member(name, named_by)?;
        layer_ids.push((name.clone(), m.diff_id.clone()));
        blobs.push((
            Blob {
                media_type: if m.gzip { LAYER_TAR_GZIP } else { LAYER_TAR },
                size: m.size,
                digest: m.digest.clone(),
            },
            m.file.clone(),
        ));
    }
    archive::check_diff_ids(&config_bytes, config, &layer_ids)?;
    let c = staged.member(config, named_by)?;
    let config_blob = Blob {
        media_type: CONFIG_MEDIA_TYPE,
        size: c.size,
        digest: c.digest.clone(),
    };
    let layer_blobs: Vec<Blob> = blobs.iter().map(|(b, _)| b.clone()).collect();
    let manifest = archive::schema2_manifest(&config_blob, &layer_blobs);
    Ok(Image {
        names,
        config: (config_blob, c.file.clone()),
        layers: blobs,
        digest: sha256(Sha256::new_with_prefix(&manifest))?,
        manifest,
    })
}
