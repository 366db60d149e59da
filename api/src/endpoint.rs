//! Registry paths parsed once, purely, into an [`Endpoint`]. Repository names
//! contain `/`, which routers handle badly; here a name is always exactly
//! the two segments before the route keyword, validated on the way.

use berth_domain::{Digest, DomainError, Reference, RepoPath};
use uuid::Uuid;

/// A registry route with its parsed parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags { repo: RepoPath },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        repo: RepoPath,
        reference: Reference,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob { repo: RepoPath, digest: Digest },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart { repo: RepoPath },
    /// `/v2/<name>/blobs/uploads/<id>`; `None` for an id that cannot exist.
    Upload { repo: RepoPath, id: Option<Uuid> },
    /// `/v2/<name>/referrers/<digest>`
    Referrers { repo: RepoPath, digest: Digest },
}

/// Parses a raw (still percent-encoded) request path. `Ok(None)` means no
/// registry route has this shape; `Err` means it has, with a bad parameter.
pub fn parse(path: &str) -> Result<Option<Endpoint>, DomainError> {
    let Some(rest) = path.strip_prefix("/v2") else {
        return Ok(None);
    };
    match rest {
        "" | "/" => return Ok(Some(Endpoint::Base)),
        "/_catalog" => return Ok(Some(Endpoint::Catalog)),
        _ => {}
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Ok(None);
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let at = |i: usize| n.checked_sub(i).map(|j| segs[j]);
    let name = |keyword_from_end: usize| -> Result<RepoPath, DomainError> {
        RepoPath::parse(&segs[..n - keyword_from_end].join("/"))
    };
    let endpoint = match (at(3), at(2), at(1)) {
        (Some("blobs"), Some("uploads"), Some("")) if n > 3 => {
            Endpoint::UploadStart { repo: name(3)? }
        }
        (Some("blobs"), Some("uploads"), Some(id)) if n > 3 => Endpoint::Upload {
            repo: name(3)?,
            id: Uuid::parse_str(id).ok(),
        },
        (_, Some("blobs"), Some("uploads")) if n > 2 => Endpoint::UploadStart { repo: name(2)? },
        (_, Some("tags"), Some("list")) if n > 2 => Endpoint::Tags { repo: name(2)? },
        (_, Some("manifests"), Some(r)) if n > 2 => {
            let repo = name(2)?;
            Endpoint::Manifest {
                repo,
                reference: Reference::parse(r)?,
            }
        }
        (_, Some("blobs"), Some(d)) if n > 2 => {
            let repo = name(2)?;
            Endpoint::Blob {
                repo,
                digest: Digest::parse(d)?,
            }
        }
        (_, Some("referrers"), Some(d)) if n > 2 => {
            let repo = name(2)?;
            Endpoint::Referrers {
                repo,
                digest: Digest::parse(d)?,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn repo(s: &str) -> RepoPath {
        RepoPath::parse(s).unwrap()
    }

    #[test]
    fn parses_every_route() {
        assert_eq!(parse("/v2/").unwrap(), Some(Endpoint::Base));
        assert_eq!(parse("/v2").unwrap(), Some(Endpoint::Base));
        assert_eq!(parse("/v2/_catalog").unwrap(), Some(Endpoint::Catalog));
        assert_eq!(
            parse("/v2/acme/web/tags/list").unwrap(),
            Some(Endpoint::Tags {
                repo: repo("acme/web")
            })
        );
        assert!(matches!(
            parse("/v2/acme/web/manifests/v1").unwrap(),
            Some(Endpoint::Manifest {
                reference: Reference::Tag(_),
                ..
            })
        ));
        assert!(matches!(
            parse(&format!("/v2/acme/web/manifests/{D}")).unwrap(),
            Some(Endpoint::Manifest {
                reference: Reference::Digest(_),
                ..
            })
        ));
        assert!(matches!(
            parse(&format!("/v2/acme/web/blobs/{D}")).unwrap(),
            Some(Endpoint::Blob { .. })
        ));
        assert_eq!(
            parse("/v2/acme/web/blobs/uploads/").unwrap(),
            Some(Endpoint::UploadStart {
                repo: repo("acme/web")
            })
        );
        assert_eq!(
            parse("/v2/acme/web/blobs/uploads").unwrap(),
            Some(Endpoint::UploadStart {
                repo: repo("acme/web")
            })
        );
        let id = Uuid::new_v4();
        assert_eq!(
            parse(&format!("/v2/acme/web/blobs/uploads/{id}")).unwrap(),
            Some(Endpoint::Upload {
                repo: repo("acme/web"),
                id: Some(id)
            })
        );
        assert!(matches!(
            parse(&format!("/v2/acme/web/referrers/{D}")).unwrap(),
            Some(Endpoint::Referrers { .. })
        ));
    }

    #[test]
    fn keywords_may_be_names() {
        assert_eq!(
            parse("/v2/blobs/uploads/blobs/uploads/").unwrap(),
            Some(Endpoint::UploadStart {
                repo: repo("blobs/uploads")
            })
        );
        assert!(matches!(
            parse("/v2/manifests/tags/manifests/latest").unwrap(),
            Some(Endpoint::Manifest { repo, .. }) if repo == self::repo("manifests/tags")
        ));
    }

    #[test]
    fn bad_names_and_parameters_are_refused() {
        let name_invalid = |p: &str| matches!(parse(p), Err(DomainError::NameInvalid(_)));
        assert!(name_invalid("/v2/acme/manifests/v1"));
        assert!(name_invalid("/v2/acme/web/extra/manifests/v1"));
        assert!(name_invalid("/v2/../web/manifests/v1"));
        assert!(name_invalid("/v2/acme/%2e%2e/manifests/v1"));
        assert!(name_invalid("/v2/Acme/web/tags/list"));
        assert!(name_invalid("/v2//web/tags/list"));
        assert!(matches!(
            parse("/v2/acme/web/blobs/sha256:abc"),
            Err(DomainError::DigestInvalid(_))
        ));
        assert!(matches!(
            parse("/v2/acme/web/manifests/bad%20tag"),
            Err(DomainError::TagInvalid(_))
        ));
        assert_eq!(
            parse("/v2/acme/web/blobs/uploads/not-a-uuid").unwrap(),
            Some(Endpoint::Upload {
                repo: repo("acme/web"),
                id: None
            })
        );
    }

    #[test]
    fn other_paths_are_not_registry_routes() {
        for p in [
            "/",
            "/v1/",
            "/v2x",
            "/v2/acme/web",
            "/v2/acme/web/unknown/x",
            "/favicon.ico",
        ] {
            assert_eq!(parse(p).unwrap(), None, "{p}");
        }
    }

    /// The path an endpoint is served at, for the round-trip property.
    fn render(e: &Endpoint) -> String {
        match e {
            Endpoint::Base => "/v2/".into(),
            Endpoint::Catalog => "/v2/_catalog".into(),
            Endpoint::Tags { repo } => format!("/v2/{repo}/tags/list"),
            Endpoint::Manifest { repo, reference } => format!("/v2/{repo}/manifests/{reference}"),
            Endpoint::Blob { repo, digest } => format!("/v2/{repo}/blobs/{digest}"),
            Endpoint::UploadStart { repo } => format!("/v2/{repo}/blobs/uploads/"),
            Endpoint::Upload { repo, id: Some(id) } => format!("/v2/{repo}/blobs/uploads/{id}"),
            Endpoint::Upload { repo, id: None } => format!("/v2/{repo}/blobs/uploads/x"),
            Endpoint::Referrers { repo, digest } => format!("/v2/{repo}/referrers/{digest}"),
        }
    }

    /// A deterministic fuzz: tens of thousands of paths assembled from route
    /// keywords, names, traversal tricks and junk never panic the parser, and
    /// every path it accepts renders back to a path that parses the same.
    #[test]
    fn parser_never_panics_and_round_trips() {
        let pieces = [
            "v2",
            "acme",
            "web",
            "2048-demo",
            "manifests",
            "blobs",
            "uploads",
            "tags",
            "list",
            "referrers",
            "_catalog",
            "..",
            ".",
            "%2e%2e",
            "%2F",
            "",
            "A",
            "-",
            "v1",
            "latest",
            D,
            "sha256:abc",
            "md5:00",
            "00000000-0000-0000-0000-000000000000",
            "a__b",
            "é",
            "a b",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut accepted = 0;
        for _ in 0..50_000 {
            let len = next(7);
            let mut path = String::from(if next(4) == 0 { "/" } else { "/v2/" });
            let segs: Vec<&str> = (0..len).map(|_| pieces[next(pieces.len())]).collect();
            path.push_str(&segs.join("/"));
            if let Ok(Some(e)) = parse(&path) {
                accepted += 1;
                assert_eq!(parse(&render(&e)).unwrap(), Some(e), "{path}");
            }
        }
        assert!(
            accepted > 100,
            "the generator reaches real routes ({accepted})"
        );
    }
}
