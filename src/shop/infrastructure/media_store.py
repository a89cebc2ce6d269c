"""Uploaded files in a folder (`{var_dir}/media/uploads/` by default), each written whole or not at all."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path


class FileMediaStore:
    """MediaStore on the local disk (every worker of one machine sees the same folder)."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    async def save(self, name: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, name, data)

    def _write(self, name: str, data: bytes) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        target = self._folder / name
        if target.is_file() and target.stat().st_size == len(data):
            return  # the name is the content's hash: the same picture is already there
        # a reader never sees half a file: write beside it, then rename over
        handle, temporary = tempfile.mkstemp(dir=self._folder, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def path_of(self, name: str) -> Path | None:
        if "/" in name or "\\" in name or name.startswith("."):
            return None
        path = self._folder / name
        return path if path.is_file() else None
