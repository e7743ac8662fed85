"""A recording's path: a plain file, or a member of a zip archive written ``archive.zip::member``
(so that evaluations read a corpus where it lies, without extracting it)."""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path, PurePosixPath

from capture.readers.recording import RecordingError

MEMBER_SEP = "::"


def split(path: str | Path) -> tuple[Path, str | None]:
    """(file on disk, zip member or None)."""
    s = str(path)
    if MEMBER_SEP in s:
        archive, member = s.split(MEMBER_SEP, 1)
        return Path(archive), member
    return Path(s), None


def name(path: str | Path) -> PurePosixPath:
    """The recording's own name (the member's, inside a zip): for suffix, stem and messages."""
    disk, member = split(path)
    return PurePosixPath(member) if member is not None else PurePosixPath(disk.name)


def exists(path: str | Path) -> bool:
    disk, member = split(path)
    if member is None:
        return disk.is_file()
    try:
        with zipfile.ZipFile(disk) as z:
            z.getinfo(member)
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return True


def read_bytes(path: str | Path) -> bytes:
    disk, member = split(path)
    try:
        if member is None:
            return disk.read_bytes()
        with zipfile.ZipFile(disk) as z:
            return z.read(member)
    except (OSError, KeyError, zipfile.BadZipFile) as e:
        raise RecordingError(f"{name(path)}: cannot read ({e})") from None


def read_text(path: str | Path) -> str:
    return read_bytes(path).decode("utf-8", errors="replace")


def read_head(path: str | Path, n: int = 4096) -> str:
    """The first ``n`` bytes as text (for telling formats apart by content); '' if unreadable."""
    disk, member = split(path)
    try:
        if member is None:
            with open(disk, "rb") as fh:
                raw = fh.read(n)
        else:
            with zipfile.ZipFile(disk) as z, z.open(member) as fh:
                raw = fh.read(n)
    except (OSError, KeyError, zipfile.BadZipFile):
        return ""
    return raw.decode("utf-8", errors="replace")


def siblings(path: str | Path, suffix: str) -> list[str]:
    """Paths (same form as ``path``) of the files beside it with ``suffix``, sorted."""
    disk, member = split(path)
    if member is None:
        return sorted(str(p) for p in disk.parent.iterdir()
                      if p.is_file() and p.suffix.lower() == suffix)
    folder = posixpath.dirname(member)
    with zipfile.ZipFile(disk) as z:
        names = z.namelist()
    return sorted(f"{disk}{MEMBER_SEP}{m}" for m in names
                  if posixpath.dirname(m) == folder and m.lower().endswith(suffix))
