"""A to-do list kept in a JSON file: the Smart Importer demo.

`forge inspect tools.py` shows the tools an agent gets from these functions, with effects and
undo plans inferred from the code, without running it. `forge import tools.py -o DIR` writes a
crate whose binary serves them over MCP, every change undoable.
"""

import json
import os
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Optional


class Priority(Enum):
    LOW = "low"
    HIGH = "high"


@dataclass
class Todo:
    """One thing to do."""

    title: str
    done: bool = False
    priority: Priority = Priority.LOW


def list_todos(path: str, only_open: bool = False) -> list[Todo]:
    """The to-dos of a list.

    Args:
        path: The list's JSON file.
        only_open: Leave out the ones that are done.
    """
    todos = _load(path)
    return [t for t in todos if not (only_open and t.done)]


def add_todo(path: str, title: str, priority: Priority = Priority.LOW) -> int:
    """Add a to-do to a list; the file is made when missing.

    Args:
        path: The list's JSON file.
        title: What to do.
        priority: How urgent it is.

    Returns:
        How many to-dos the list has now.
    """
    todos = _load(path)
    todos.append(Todo(title=title, priority=priority))
    _save(path, todos)
    return len(todos)


def complete_todo(path: str, title: str) -> bool:
    """Mark a to-do done.

    Args:
        path: The list's JSON file.
        title: The to-do's title.

    Returns:
        Whether a to-do of that title was found.
    """
    todos = _load(path)
    found = False
    for t in todos:
        if t.title == title:
            t.done = True
            found = True
    _save(path, todos)
    return found


def archive_list(path: str, folder: Optional[str] = None) -> str:
    """Move a list into an archive folder (made when missing).

    Args:
        path: The list's JSON file.
        folder: The archive folder; default `archive` beside the list.

    Returns:
        Where the list is now.
    """
    target = folder or os.path.join(os.path.dirname(path), "archive")
    os.makedirs(target, exist_ok=True)
    dest = os.path.join(target, os.path.basename(path))
    os.replace(path, dest)
    return dest


def _load(path: str) -> list[Todo]:
    p = Path(path)
    if not p.exists():
        return []
    rows = json.loads(p.read_text(encoding="utf-8"))
    return [Todo(r["title"], r["done"], Priority(r["priority"])) for r in rows]


def _save(path: str, todos: list[Todo]) -> None:
    rows = [dict(asdict(t), priority=t.priority.value) for t in todos]
    Path(path).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
