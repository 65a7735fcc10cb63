"""Notes kept as Markdown files: the example module of `forge inspect` and the Python docs."""

import glob
import json
import os
import shutil
import time
import urllib.request
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Literal, Optional


class Mood(Enum):
    """How a note feels."""

    CALM = "calm"
    URGENT = "urgent"


@dataclass
class NoteInfo:
    """What `describe_note` says of a note."""

    path: str
    size: int
    mood: Optional[Mood] = None


def read_note(path: str, head: Optional[int] = None) -> str:
    """Read a note.

    Args:
        path: The note's file.
        head: Only the first N lines, when given.

    Returns:
        The note's text.
    """
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    return "\n".join(lines[:head] if head else lines)


def write_note(path: str, text: str, mode: Literal["w", "a"] = "w") -> int:
    """Write (or append to) a note.

    Args:
        path: The note's file; created when missing.
        text: What to write.
        mode: "w" replaces the note, "a" appends to it.

    Returns:
        The number of characters written.
    """
    with open(path, mode, encoding="utf-8") as f:
        return f.write(text)


def delete_note(path: str) -> None:
    """Delete a note.

    Args:
        path: The note's file.
    """
    os.remove(path)


def move_note(source: str, destination: str) -> str:
    """Move a note.

    Args:
        source: The note's file.
        destination: Where it goes; must not exist.
    """
    return shutil.move(source, destination)


def list_notes(root: str, pattern: str = "*.md") -> list[str]:
    """The notes under a folder.

    Args:
        root: The folder.
        pattern: A glob the file names must match.
    """
    return sorted(str(p) for p in Path(root).glob(pattern))


def describe_note(path: str) -> NoteInfo:
    """Size and mood of a note.

    Args:
        path: The note's file.
    """
    text = Path(path).read_text(encoding="utf-8")
    mood = Mood.URGENT if "!" in text else Mood.CALM
    return NoteInfo(path=path, size=len(text), mood=mood)


def archive_notes(root: str, into: str) -> None:
    """Move every note of a folder into an archive folder.

    Args:
        root: The folder of notes.
        into: The archive folder; made when missing.
    """
    _ensure_folder(into)
    for p in Path(root).glob("*.md"):
        move_note(str(p), os.path.join(into, p.name))


def purge_folder(root: str) -> None:
    """Delete a folder of notes and everything in it.

    Args:
        root: The folder.
    """
    shutil.rmtree(root)


def sweep_notes(pattern: str) -> int:
    """Delete the notes a glob pattern matches.

    Args:
        pattern: Which notes (`notes/*.tmp`).

    Returns:
        How many were deleted.
    """
    gone = 0
    for p in glob.glob(pattern):
        os.remove(p)
        gone += 1
    return gone


def wait_for_note(path: str, seconds: float = 5.0) -> bool:
    """Wait until a note exists.

    Args:
        path: The note's file.
        seconds: How long to wait at most.

    Returns:
        Whether the note appeared in time.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def publish_note(path: str, url: str) -> int:
    """Send a note to a web service.

    Args:
        path: The note's file.
        url: Where to send it.

    Returns:
        The HTTP status.
    """
    with open(path, encoding="utf-8") as f:
        body = json.dumps({"text": f.read()}).encode()
    with urllib.request.urlopen(url, data=body) as r:
        return r.status


def _ensure_folder(path: str) -> None:
    os.makedirs(path, exist_ok=True)
