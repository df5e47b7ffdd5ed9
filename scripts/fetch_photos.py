#!/usr/bin/env python3
"""Fetch freely licensed sharp photographs from Debian wallpaper packages (the data recipe).

On a fresh Debian/Ubuntu machine::

    python scripts/fetch_photos.py            # -> data/photos/ (git-ignored) + studies/photos_manifest.json

For each package, ``apt-get download`` fetches the .deb (no root, nothing installed) and
``dpkg -x`` unpacks it into ``data/photos/<package>/``. Every JPEG/PNG is then screened:

* duplicates (same wallpaper at several resolutions, as in plasma-workspace-wallpapers) keep
  only the largest file of each wallpaper folder;
* vector / abstract art is dropped by colour statistics (large exactly flat areas, few
  distinct colours) plus an explicit exclude list;
* out-of-focus photos are dropped by a sharpness statistic (high-percentile gradient at a
  fixed 1024-px working size).

Each kept file is recorded in the manifest with its package and version, the license that the
package's ``/usr/share/doc/<pkg>/copyright`` (DEP-5) gives for it, its sha256, size, the
screening statistics, and a FIXED split: ``test`` when the first 8 hex digits of
sha256("<package>/<name>") modulo 10 is below 3, else ``train``. The split depends only on the
names, so it is the same on every machine. No photo is committed to the repository.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_PACKAGES = (
    "plasma-workspace-wallpapers",
    "mate-backgrounds",
    "lomiri-wallpapers-16.04",
    "lomiri-wallpapers-20.04",
    "ukui-wallpapers",
)
# Graphic designs, illustrations, logos and renders that pass the statistics but are not photos.
EXCLUDE = {
    "mate-backgrounds": ["*/desktop/*", "*/abstract/*"],
    "plasma-workspace-wallpapers": [
        "*/Autumn/*", "*/Canopee/*", "*/Cascade/*", "*/ColorfulCups/*", "*/Honeywave/*", "*/Kokkini/*",
        "*/Opal/*", "*/Patak/*", "*/SafeLanding/*", "*/Shell/*", "*/Flow/*", "*/Kay/*", "*/IceCold/*",
        "*/Cluster/*", "*/Altai/*", "*/MilkyWay/*", "*/FlyingKonqui/*", "*/Volna/*", "*/Elarun/*",
    ],
    "lomiri-wallpapers-16.04": ["*warty-final*", "*analogpattern*", "*Picture_*", "*greentock*"],
    "lomiri-wallpapers-20.04": ["*warty-final*", "*Painting-Colors*", "*Infinite-Sea*", "*analogpattern*", "*Picture_*"],
    "ukui-wallpapers": ["*rhythm*", "*string*", "*calla*", "*city*", "*desert*", "*fluent*", "*focal*",
                        "*goldfish*", "*rollpaper*", "*the-mouse*", "*firstgeneration*", "*2004default*"],
}
SUFFIXES = {".jpg", ".jpeg", ".png"}
SIZE_RE = re.compile(r"^(\d+)x(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)

# Screening thresholds, on a copy resized to 1024 px on the long side (8-bit luma).
MAX_FLAT_FRACTION = 0.35  # pixels whose 3x3 neighbourhood is exactly constant
MIN_COLOURS = 500  # distinct RGB colours (after 5-bit quantisation) in the 1024-px copy
MIN_SHARPNESS = 18.0  # 99th percentile of |gradient| (8-bit units)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def split_of(package: str, name: str) -> str:
    """Fixed split from the names only: test iff int(sha256(package/name)[:8], 16) % 10 < 3 (~30 %)."""
    digest = hashlib.sha256(f"{package}/{name}".encode()).hexdigest()
    return "test" if int(digest[:8], 16) % 10 < 3 else "train"


def parse_copyright(path: Path) -> list[tuple[list[str], str]]:
    """DEP-5 ``Files:`` stanzas as (patterns, license) in file order."""
    if not path.is_file():
        return []
    stanzas: list[tuple[list[str], str]] = []
    files: list[str] | None = None
    lic: str | None = None
    key = None
    for line in path.read_text(errors="replace").splitlines() + [""]:
        if not line.strip():
            if files is not None and lic:
                stanzas.append((files, lic))
            files, lic, key = None, None, None
            continue
        if line[0] in " \t":
            if key == "Files" and files is not None:
                files.extend(line.split())
            continue
        key, _, value = line.partition(":")
        if key == "Files":
            files = value.split()
        elif key == "License":
            lic = value.strip().split("\n")[0]
    return stanzas


def license_for(stanzas: list[tuple[list[str], str]], rel: str) -> str:
    """Last matching stanza wins (DEP-5); patterns are matched on the path and on the file name."""
    found = "unknown"
    base = os.path.basename(rel)
    for patterns, lic in stanzas:
        for pat in patterns:
            if pat.startswith("debian/"):
                continue
            if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(rel, "*/" + pat) or fnmatch.fnmatch(base, os.path.basename(pat)):
                found = lic
    return found


def fetch_package(pkg: str, out_root: Path) -> tuple[Path, str] | None:
    """``apt-get download`` + ``dpkg -x`` into ``out_root/<pkg>``; returns (folder, version)."""
    dest = out_root / pkg
    debs = out_root / ".debs"
    debs.mkdir(parents=True, exist_ok=True)
    existing = sorted(debs.glob(f"{pkg}_*.deb"))
    if not existing:
        with tempfile.TemporaryDirectory(dir=debs) as tmp:
            os.chmod(tmp, 0o777)  # apt's sandbox user must be able to write here
            r = subprocess.run(["apt-get", "download", pkg], cwd=tmp, capture_output=True, text=True, check=False)
            if r.returncode != 0:
                print(f"  skip {pkg}: apt-get download failed: {r.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                return None
            for f in Path(tmp).glob("*.deb"):
                os.replace(f, debs / f.name)
        existing = sorted(debs.glob(f"{pkg}_*.deb"))
        if not existing:
            return None
    deb = existing[-1]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=False).stdout.strip()
    if not dest.is_dir():
        subprocess.run(["dpkg", "-x", str(deb), str(dest)], check=True)
    return dest, version


def candidate_files(root: Path) -> list[Path]:
    """Image files, keeping only the largest of each ``WxH.ext`` family (same wallpaper, many sizes)."""
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES and "screenshot" not in p.name]
    best: dict[Path, tuple[int, Path]] = {}
    out = []
    for p in files:
        m = SIZE_RE.match(p.name)
        if m:
            area = int(m.group(1)) * int(m.group(2))
            if p.parent not in best or area > best[p.parent][0]:
                best[p.parent] = (area, p)
        else:
            out.append(p)
    out.extend(v[1] for v in best.values())
    return sorted(out)


def screen(path: Path) -> dict:
    """Photo / focus statistics of one file (see the module docstring)."""
    import cv2
    import numpy as np

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return {"ok": False, "reason": "unreadable"}
    h, w = img.shape[:2]
    s = 1024.0 / max(h, w)
    small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) if s < 1 else img
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
    mx = cv2.dilate(gray, np.ones((3, 3), np.uint8))
    mn = cv2.erode(gray, np.ones((3, 3), np.uint8))
    flat = float(np.mean(mx == mn))
    q = (small >> 3).astype(np.int32)
    colours = int(np.unique(q[..., 0] * 1024 + q[..., 1] * 32 + q[..., 2]).size)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3) / 4.0
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3) / 4.0
    sharp = float(np.percentile(np.hypot(gx, gy), 99))
    reasons = []
    if flat > MAX_FLAT_FRACTION:
        reasons.append(f"flat areas {flat:.2f}")
    if colours < MIN_COLOURS:
        reasons.append(f"few colours {colours}")
    if sharp < MIN_SHARPNESS:
        reasons.append(f"soft {sharp:.1f}")
    return {"ok": not reasons, "reason": "; ".join(reasons), "width": w, "height": h,
            "flat_fraction": round(flat, 4), "colours": colours, "sharpness_p99": round(sharp, 2)}


#: Keys a person adds to a manifest entry after screening (e.g. a test photo found to be blurred
#: itself); a re-fetch keeps them for the same file.
ANNOTATIONS = ("exclude_from_scoring",)


def carry_annotations(entries: list[dict], old_manifest: Path) -> None:
    """Copy :data:`ANNOTATIONS` from an existing manifest onto the entries of the same path and sha256."""
    if not old_manifest.is_file():
        return
    try:
        old = {e["path"]: e for e in json.loads(old_manifest.read_text()).get("photos", [])}
    except (ValueError, KeyError, TypeError):
        print(f"{old_manifest}: unreadable, its annotations are not carried over", file=sys.stderr)
        return
    for e in entries:
        before = old.get(e["path"])
        if before is not None and before.get("sha256") == e["sha256"]:
            e.update({k: before[k] for k in ANNOTATIONS if k in before})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="data/photos", help="cache folder for packages and photos (git-ignored)")
    ap.add_argument("--manifest", default="studies/photos_manifest.json")
    ap.add_argument("--packages", nargs="*", default=list(DEFAULT_PACKAGES))
    args = ap.parse_args(argv)
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    entries, rejected = [], []
    for pkg in args.packages:
        print(f"{pkg}: fetching", file=sys.stderr)
        got = fetch_package(pkg, out_root)
        if got is None:
            continue
        root, version = got
        stanzas = parse_copyright(root / "usr/share/doc" / pkg / "copyright")
        excludes = EXCLUDE.get(pkg, [])
        for path in candidate_files(root):
            rel = path.relative_to(root).as_posix()
            if any(fnmatch.fnmatch(rel, pat) for pat in excludes):
                rejected.append({"package": pkg, "file": rel, "reason": "exclude list"})
                continue
            stats = screen(path)
            if not stats.pop("ok"):
                rejected.append({"package": pkg, "file": rel, "reason": stats["reason"]})
                continue
            stats.pop("reason")
            name = rel.split("/contents/images/")[0].split("/")[-1] if "/contents/images/" in rel else path.name
            entries.append({
                "path": f"{pkg}/{rel}", "package": pkg, "version": version, "name": name,
                "license": license_for(stanzas, rel), "copyright_file": f"{pkg}/usr/share/doc/{pkg}/copyright",
                "sha256": sha256_file(path), "split": split_of(pkg, name), **stats,
            })
    entries.sort(key=lambda e: e["path"])
    carry_annotations(entries, Path(args.manifest))
    manifest = {
        "description": "Freely licensed photographs from Debian wallpaper packages; produced by scripts/fetch_photos.py",
        "root": args.out,
        "split_rule": "test iff int(sha256('<package>/<name>')[:8], 16) % 10 < 3, else train",
        "screening": {"max_flat_fraction": MAX_FLAT_FRACTION, "min_colours": MIN_COLOURS,
                      "min_sharpness_p99": MIN_SHARPNESS, "exclude": EXCLUDE},
        "counts": {"train": sum(e["split"] == "train" for e in entries), "test": sum(e["split"] == "test" for e in entries),
                   "rejected": len(rejected)},
        "photos": entries,
        "rejected": sorted(rejected, key=lambda e: (e["package"], e["file"])),
    }
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from deblurkit.io import atomic_write

    with atomic_write(args.manifest, "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    print(f"kept {len(entries)} photos ({manifest['counts']['test']} test), rejected {len(rejected)}; "
          f"manifest: {args.manifest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
