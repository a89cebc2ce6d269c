"""Static assets: one `asset()` for templates and the SPA. Locally, file names carry a hash of their content, so
browsers may keep them for a year; with `SHOP_ASSETS_CDN=gh:{user}/{repo}@{version}` the same files come from
jsDelivr over the GitHub repository, with Subresource Integrity hashes. Without a CDN nothing changes but the
host, so a page never breaks for want of one."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).parent / "static"
# where the package's folders sit in the repository, as jsDelivr sees it
REPOSITORY_PATH = "src/shop/web/static"
SPA_REPOSITORY_PATH = "src/shop/web/spa"
_CDN = re.compile(r"gh:(?P<user>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+)@(?P<version>[A-Za-z0-9_.-]+)")
_SERVED = {".css", ".js", ".mjs", ".svg", ".png", ".jpg", ".webp", ".woff2", ".ico", ".json", ".txt"}


def parse_cdn(value: str | None) -> str | None:
    """The jsDelivr URL of the repository at `version` for `gh:user/repo@version`; ValueError for anything else."""
    if not value:
        return None
    match = _CDN.fullmatch(value.strip())
    if match is None:
        raise ValueError("SHOP_ASSETS_CDN must look like gh:{user}/{repo}@{version}, e.g. gh:acme/shop@v1.2.0")
    return f"https://cdn.jsdelivr.net/gh/{match['user']}/{match['repo']}@{match['version']}"


@dataclass(frozen=True, slots=True)
class Asset:
    path: str  # relative to the static folder, e.g. "css/shop.css"
    hashed: str  # e.g. "css/shop.3f2a1b9c0d.css"
    integrity: str  # "sha384-…"


def _hashed(path: str, digest: str) -> str:
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}.{digest[:10]}.{suffix}" if dot else f"{path}.{digest[:10]}"


class Assets:
    def __init__(self, root: Path = STATIC, *, cdn: str | None = None) -> None:
        self.root = root
        self.cdn_root = parse_cdn(cdn)  # the repository on jsDelivr, or None: everything from the shop itself
        self.cdn_base = f"{self.cdn_root}/{REPOSITORY_PATH}" if self.cdn_root else None
        self._by_path: dict[str, Asset] = {}
        self._by_hashed: dict[str, Path] = {}
        for file in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _SERVED):
            data = file.read_bytes()
            path = file.relative_to(root).as_posix()
            asset = Asset(path, _hashed(path, hashlib.sha256(data).hexdigest()),
                          "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode())
            self._by_path[path] = asset
            self._by_hashed[asset.hashed] = file

    def url(self, path: str) -> str:
        """Where a page loads the asset from; unknown names fail loudly at render time, not in the browser."""
        asset = self._by_path.get(path)
        if asset is None:
            raise KeyError(f"no static asset {path!r} under {self.root}")
        if self.cdn_base:
            return f"{self.cdn_base}/{asset.path}"
        return f"/static/{asset.hashed}"

    def integrity(self, path: str) -> str:
        return self._by_path[path].integrity

    @property
    def cdn_origin(self) -> str | None:
        return "https://cdn.jsdelivr.net" if self.cdn_root else None

    def spa_base(self) -> str | None:
        """Where the backup storefront's modules load from on the CDN (None: from wherever index.html is)."""
        return f"{self.cdn_root}/{SPA_REPOSITORY_PATH}" if self.cdn_root else None

    def file_for(self, hashed: str) -> Path | None:
        """The file a content-hashed URL names, if any."""
        return self._by_hashed.get(hashed)

    def plain_file(self, path: str) -> Path | None:
        return self.root / path if path in self._by_path else None

    def manifest(self) -> dict[str, dict[str, str]]:
        return {a.path: {"file": a.hashed, "integrity": a.integrity} for a in self._by_path.values()}

    def build(self, out: Path) -> Path:
        """`shop assets build`: the manifest and the content-hashed copies, ready for any static host or CDN."""
        out.mkdir(parents=True, exist_ok=True)
        for asset in self._by_path.values():
            target = out / asset.hashed
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / asset.path, target)
        manifest = out / "manifest.json"
        manifest.write_text(json.dumps(self.manifest(), indent=2, sort_keys=True) + "\n")
        return manifest
