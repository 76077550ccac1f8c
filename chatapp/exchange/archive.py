"""Reading an uploaded file within the import limits (`CHAT_LIMITS["import_*"]`): its size, a
zip's entries and what they unpack to (checked against the headers first, then counted as the
bytes come out, so a zip whose headers lie is stopped as well), and JSON's nesting (orjson
refuses more than 1,024 levels). Every refusal is an `ImportRefused` naming its limit."""

from __future__ import annotations

import zipfile
import zlib
from typing import IO, Any

import orjson
from django.conf import settings

from chatapp.attachments.images import megabytes

from .neutral import ImportRefused

# orjson's own bound on nesting (arrays and objects), which it reports as "depth limit".
JSON_MAX_DEPTH = 1024
_CHUNK = 1 << 20
# A zip's table of contents entry is 46 bytes and a name; more than this a name on average is
# not an export: it bounds the memory the table takes before any entry is read.
_DIRECTORY_BYTES_PER_ENTRY = 1024


def limit(name: str) -> int:
    value: int = settings.CHAT_LIMITS[name]
    return value


def check_size(size: int) -> None:
    most = limit("import_bytes")
    if size > most:
        raise ImportRefused(
            f"This file is {megabytes(size)}; the limit is {megabytes(most)} for an import.", 413
        )


def is_zip(fp: IO[bytes]) -> bool:
    fp.seek(0)
    head = fp.read(4)
    fp.seek(0)
    return head in (b"PK\x03\x04", b"PK\x05\x06")


def read_all(fp: IO[bytes]) -> bytes:
    """A file that is not a zip, within the size limit however its size was declared."""
    most = limit("import_bytes")
    fp.seek(0)
    raw = fp.read(most + 1)
    check_size(len(raw))
    return raw


def parse_json(raw: bytes, name: str) -> Any:
    try:
        return orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise ImportRefused(
                f"{name} is nested deeper than {JSON_MAX_DEPTH:,} levels, the limit for JSON."
            ) from None
        raise ImportRefused(
            f"{name} is not JSON ({exc}). Choose the export file itself: a .json or .zip file."
        ) from None


class Archive:
    """An uploaded zip, read entry by entry within the limits."""

    def __init__(self, fp: IO[bytes]) -> None:
        self.most_entries = limit("import_zip_entries")
        self.budget = limit("import_unzipped_bytes")
        self.unpacked = 0
        _check_directory(fp, self.most_entries)
        try:
            self.zip = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise ImportRefused(f"This zip file is damaged ({exc}).") from None
        entries = self.zip.infolist()
        if len(entries) > self.most_entries:
            raise _too_many_entries(len(entries), self.most_entries)
        self.entries = {info.filename: info for info in entries if not info.is_dir()}

    def names(self) -> list[str]:
        return list(self.entries)

    def read(self, name: str) -> bytes:
        """An entry's bytes, counted against what the whole zip may unpack to."""
        info = self.entries[name]
        if self.unpacked + info.file_size > self.budget:
            raise self._over_budget()
        out = bytearray()
        try:
            with self.zip.open(info) as fh:
                while chunk := fh.read(_CHUNK):
                    out += chunk
                    self.unpacked += len(chunk)
                    if len(out) > info.file_size or self.unpacked > self.budget:
                        raise self._over_budget()
        except ImportRefused:
            raise
        except RuntimeError:
            raise ImportRefused(
                f"{name} in this zip is encrypted; export it again without a password."
            ) from None
        except NotImplementedError:
            raise ImportRefused(
                f"{name} in this zip is compressed in a way this server does not read; "
                "zip it again with the usual (deflate) compression."
            ) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise ImportRefused(f"This zip file is damaged ({name}: {exc}).") from None
        return bytes(out)

    def json(self, name: str) -> Any:
        most = limit("import_bytes")
        size = self.entries[name].file_size
        if size > most:
            raise ImportRefused(
                f"{name} is {megabytes(size)} uncompressed; the limit is {megabytes(most)} "
                "for one JSON document.",
                413,
            )
        return parse_json(self.read(name), name)

    def _over_budget(self) -> ImportRefused:
        return ImportRefused(
            f"This zip unpacks to more than {megabytes(self.budget)}, the limit for an import.",
            413,
        )


def _too_many_entries(found: int, most: int) -> ImportRefused:
    return ImportRefused(
        f"This zip holds {found:,} files; the limit is {most:,} files for an import.", 413
    )


def _check_directory(fp: IO[bytes], most: int) -> None:
    """Refuse a zip whose table of contents is too big before `zipfile` reads it into
    memory: its end record says how many entries it lists and how many bytes they take."""
    fp.seek(0, 2)
    size = fp.tell()
    tail_size = min(size, 22 + 0xFFFF + 20 + 56)
    fp.seek(size - tail_size)
    tail = fp.read(tail_size)
    fp.seek(0)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        raise ImportRefused("This zip file is damaged: its table of contents is missing.")
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    directory = int.from_bytes(tail[at + 12 : at + 16], "little")
    locator = tail[at - 20 : at] if at >= 20 else b""
    if (entries == 0xFFFF or directory == 0xFFFFFFFF) and locator[:4] == b"PK\x06\x07":
        # ZIP64: the counts are in the ZIP64 end record the locator points to.
        offset = int.from_bytes(locator[8:16], "little")
        fp.seek(min(offset, size))
        record = fp.read(56)
        fp.seek(0)
        if record[:4] == b"PK\x06\x06" and len(record) == 56:
            entries = int.from_bytes(record[32:40], "little")
            directory = int.from_bytes(record[40:48], "little")
    if entries > most or directory > most * _DIRECTORY_BYTES_PER_ENTRY:
        raise _too_many_entries(max(entries, directory // _DIRECTORY_BYTES_PER_ENTRY), most)
