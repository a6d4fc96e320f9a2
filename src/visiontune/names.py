"""The one name rule of everything a user names: training jobs, tuning jobs, labeling jobs and endpoints.
A name becomes a folder, a URL segment and a header value, so it is kept to what is safe in all three."""

from __future__ import annotations

import re

from visiontune.errors import ConfigError

MAX_LENGTH = 63
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RULE = (
    f"1 to {MAX_LENGTH} letters, digits, '.', '_' or '-', starting with a letter or digit "
    "(no spaces, slashes or quotes)"
)


def check_name(name: object, what: str = "name", *, reserve: int = 0) -> str:
    """``name`` if it follows the rule, else a :class:`ConfigError` that says the rule.  ``reserve``: characters
    kept free for names derived from this one (a tuning job's trials add ``-NNN``)."""
    longest = MAX_LENGTH - reserve
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > longest or ".." in name:
        rule = RULE.replace(str(MAX_LENGTH), str(longest))
        raise ConfigError(f"{what} {name!r}: a name is {rule}")
    return name
