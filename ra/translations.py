"""The screens' message catalogues: ``.po`` files in the repository, ``.mo`` compiled from them.

The ``.mo`` files are not versioned; each app start compiles any that is missing or older than
its ``.po`` (however guichet was installed: the scripts, ``pip install``, a container image), so
the English screens never fall back to French silently. Written to a temporary file and renamed:
gunicorn workers starting together do not read a half-written catalogue.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

logger = logging.getLogger(__name__)


def compile_catalogues(directory: Path) -> list[Path]:
    """Compile each ``<lang>/LC_MESSAGES/*.po`` under ``directory`` whose ``.mo`` is stale; return those."""
    compiled = []
    for po in sorted(directory.glob("*/LC_MESSAGES/*.po")):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        try:
            with po.open("rb") as source:
                catalogue = read_po(source, locale=po.parent.parent.name)
            handle, temporary = tempfile.mkstemp(dir=po.parent, prefix=".messages-", suffix=".mo")
            try:
                with os.fdopen(handle, "wb") as target:
                    write_mo(target, catalogue)
                os.replace(temporary, mo)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as exc:  # a read-only installation: the screens stay in French
            logger.warning("cannot compile the message catalogue %s: %s", po, exc)
            continue
        compiled.append(mo)
    return compiled
