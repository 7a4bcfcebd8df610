"""The languages relmark speaks: labels, named questions, explanations and pages.

One list for every layer: the web's ``?lang=`` policy (``relmark.web.i18n``), the command
line's ``--lang`` choices and the named questions' texts all read it, so a language is
added in one place.
"""

from __future__ import annotations

#: The supported languages, as BCP 47 primary tags; the first is the default.
LANGUAGES: tuple[str, ...] = ("en", "it")
DEFAULT_LANGUAGE = LANGUAGES[0]
