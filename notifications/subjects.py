"""Messages about something other than a visit: the app that owns the subject registers it.

notifications imports no app above it (`.importlinter`), yet the sender must know whether such
a message still holds and what its template reads. An app above (the waitlist, for its offers)
registers a `Subject` for its kind when Django starts: `check` says why the row is not to be
sent now ("" when it is), `context` gives the template's variables (fresh signed links
included). The row names its subject in `Notification.about`; its words are notifications'
(`rendering.py`: built-in or the clinic's own template of the kind)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from .models import Notification


@dataclass(frozen=True)
class Subject:
    kind: str
    check: Callable[[Notification, datetime], str]
    context: Callable[[Notification, datetime], dict]
    attach_ics: bool = False


_SUBJECTS: dict[str, Subject] = {}


def subject_register(subject: Subject) -> None:
    _SUBJECTS[subject.kind] = subject


def subject_for(kind: str) -> Subject | None:
    return _SUBJECTS.get(kind)
