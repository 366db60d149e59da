#!/usr/bin/env python3
"""Writes the web-upload fixtures under fixtures/uploads/, byte for byte the
same on every run (fixed times, owners and gzip headers):

- legacy-only.tar: the legacy layout alone (manifest.json, repositories,
  <id>/layer.tar, <hex>.json), manifest.json last; one image of two layers
  named registry.example.com:5000/team/legacy-app:1.0.
- multi-image.tar: the legacy layout with manifest.json first and two
  images sharing their base layer: multi-a (tags v1 and latest, from
  RepoTags) and multi-b (tag v2, named only by `repositories`).
- oci-docker25.tar: what Docker 25 and later writes: oci-layout, index.json
  and blobs/sha256/..., with a legacy manifest.json beside them pointing
  into blobs/; image oci-app:2.0.
- oci-only.tar.gz: the OCI layout without manifest.json, gzip-compressed,
  with one layer itself gzip-compressed; named by the
  org.opencontainers.image.ref.name annotation example.com/ns/oci-gz:3.0.

Every image has linux/amd64 configs that Docker accepts, and each layer
holds one text file whose content the tests read back.

Usage: python3 scripts/make-upload-fixtures.py
"""

import gzip
import hashlib
import io
import json
import os
import tarfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "uploads")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def tar_bytes(members):
    """A tar of (name, bytes) members, in order, with fixed metadata."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as g:
        g.write(data)
    return out.getvalue()


def layer(path, text):
    return tar_bytes([(path, text.encode())])


def config(layers):
    """An image config over uncompressed layer bytes."""
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(l) for l in layers]},
            "history": [{"created_by": "berth fixture"} for _ in layers],
        },
        sort_keys=True,
    ).encode()


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes, sha256 {sha(data)}")


def legacy_members(layers):
    """The legacy <id>/layer.tar members of some layers; the id of a layer
    is the hash of its bytes (any unique name does)."""
    return [(f"{sha(l)}/layer.tar", l) for l in layers]


def legacy_only():
    layers = [layer("base.txt", "legacy base\n"), layer("app.txt", "legacy app\n")]
    cfg = config(layers)
    cfg_name = f"{sha(cfg)}.json"
    top = sha(layers[-1])
    manifest = [
        {
            "Config": cfg_name,
            "RepoTags": ["registry.example.com:5000/team/legacy-app:1.0"],
            "Layers": [m for m, _ in legacy_members(layers)],
        }
    ]
    repositories = {"registry.example.com:5000/team/legacy-app": {"1.0": top}}
    members = legacy_members(layers) + [
        (cfg_name, cfg),
        ("repositories", json.dumps(repositories).encode()),
        ("manifest.json", json.dumps(manifest).encode()),
    ]
    write("legacy-only.tar", tar_bytes(members))


def multi_image():
    base = layer("base.txt", "shared base\n")
    a_top = layer("a.txt", "image a\n")
    b_top = layer("b.txt", "image b\n")
    cfg_a, cfg_b = config([base, a_top]), config([base, b_top])
    manifest = [
        {
            "Config": f"{sha(cfg_a)}.json",
            "RepoTags": ["multi-a:v1", "multi-a:latest"],
            "Layers": [f"{sha(base)}/layer.tar", f"{sha(a_top)}/layer.tar"],
        },
        {
            "Config": f"{sha(cfg_b)}.json",
            "RepoTags": None,
            "Layers": [f"{sha(base)}/layer.tar", f"{sha(b_top)}/layer.tar"],
        },
    ]
    repositories = {"multi-b": {"v2": sha(b_top)}}
    members = (
        [("manifest.json", json.dumps(manifest).encode())]
        + legacy_members([base, a_top, b_top])
        + [
            (f"{sha(cfg_a)}.json", cfg_a),
            (f"{sha(cfg_b)}.json", cfg_b),
            ("repositories", json.dumps(repositories).encode()),
        ]
    )
    write("multi-image.tar", tar_bytes(members))


def oci_image(layers, stored, media_types):
    """Config, manifest and index entry bytes of an OCI image whose layer
    blobs are `stored` (as kept in the archive) over uncompressed `layers`."""
    cfg = config(layers)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + sha(cfg),
                "size": len(cfg),
            },
            "layers": [
                {"mediaType": m, "digest": "sha256:" + sha(s), "size": len(s)}
                for s, m in zip(stored, media_types)
            ],
        },
        sort_keys=True,
    ).encode()
    return cfg, manifest


def blob(data):
    return (f"blobs/sha256/{sha(data)}", data)


def oci_docker25():
    layers = [layer("base.txt", "oci base\n"), layer("app.txt", "oci app\n")]
    tar_type = "application/vnd.oci.image.layer.v1.tar"
    cfg, manifest = oci_image(layers, layers, [tar_type, tar_type])
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + sha(manifest),
                "size": len(manifest),
                "annotations": {
                    "io.containerd.image.name": "docker.io/library/oci-app:2.0",
                    "org.opencontainers.image.ref.name": "2.0",
                },
            }
        ],
    }
    legacy = [
        {
            "Config": f"blobs/sha256/{sha(cfg)}",
            "RepoTags": ["oci-app:2.0"],
            "Layers": [f"blobs/sha256/{sha(l)}" for l in layers],
        }
    ]
    members = [
        ("manifest.json", json.dumps(legacy).encode()),
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        ("index.json", json.dumps(index).encode()),
        blob(cfg),
        blob(manifest),
    ] + [blob(l) for l in layers]
    write("oci-docker25.tar", tar_bytes(members))


def oci_only():
    layers = [layer("base.txt", "gzip base\n"), layer("app.txt", "gzip app\n")]
    stored = [gz(layers[0]), layers[1]]
    cfg, manifest = oci_image(
        layers,
        stored,
        ["application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar"],
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + sha(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": "example.com/ns/oci-gz:3.0"},
            }
        ],
    }
    members = [blob(s) for s in stored] + [
        blob(manifest),
        blob(cfg),
        ("index.json", json.dumps(index).encode()),
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
    ]
    write("oci-only.tar.gz", gz(tar_bytes(members)))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    legacy_only()
    multi_image()
    oci_docker25()
    oci_only()
