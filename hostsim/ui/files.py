"""Files for PATH parameters: a browser cannot name a path on the server.

An uploaded file is saved in a private temporary folder and its path passed to the command; a
PATH parameter left empty gets a fresh path there, and whatever the command writes to it is
offered to the page as a one-time download. The folder goes when the command ends.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

from werkzeug.datastructures import FileStorage
from werkzeug.utils import secure_filename

DOWNLOAD_TTL_S = 600.0
MAX_DOWNLOADS = 20


class CommandFiles:
    """The PATH parameters of one command run."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="hostsim-ui-"))
        self.shown: dict[str, str] = {}  # path -> what the page calls it
        self.outputs: dict[str, Path] = {}

    def upload(self, name: str, storage: FileStorage) -> str:
        path = self.folder / f"upload-{name}"
        storage.save(path)
        self.shown[str(path)] = secure_filename(storage.filename or "") or "the uploaded file"
        return str(path)

    def output(self, name: str) -> str:
        path = self.folder / f"output-{name}"
        self.outputs[name] = path
        return str(path)

    def collect(self, base: str) -> list[tuple[str, bytes]]:
        """(file name, content) of what the command wrote to its output paths; from now on
        messages name those files instead of the temporary paths."""
        found = []
        for name, path in self.outputs.items():
            if not path.is_file():
                continue
            data = path.read_bytes()
            stem = base if len(self.outputs) == 1 else f"{base}-{name}"
            filename = stem + (".json" if _is_json(data) else "")
            self.shown[str(path)] = filename
            found.append((filename, data))
        return found

    def hide_paths(self, text: str) -> str:
        """The temporary paths mean nothing to the person at the page: name the files."""
        for path, shown in self.shown.items():
            text = text.replace(path, shown)
        return text

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


class Downloads:
    """Files waiting for the page to fetch them, each once, under an unguessable id."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, str, bytes]] = {}
        self._lock = threading.Lock()

    def add(self, filename: str, data: bytes) -> str:
        now = time.monotonic()
        with self._lock:
            for key, (born, _, _) in list(self._items.items()):
                if now - born > DOWNLOAD_TTL_S:
                    del self._items[key]
            while len(self._items) >= MAX_DOWNLOADS:
                del self._items[next(iter(self._items))]
            key = secrets.token_urlsafe(18)
            self._items[key] = (now, filename, data)
        return key

    def take(self, key: str) -> tuple[str, bytes] | None:
        with self._lock:
            item = self._items.pop(key, None)
        if item is None or time.monotonic() - item[0] > DOWNLOAD_TTL_S:
            return None
        return item[1], item[2]
