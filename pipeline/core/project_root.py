"""Where the user's repository is, also from inside DVC's temporary copies."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository the user works in, also from inside a queued `dvc exp run`.

    DVC runs queued and `--temp` experiments in a temporary copy but points DVC_ROOT at the
    original repository: what is kept inside the copy (runs, stored models) would vanish
    with it.
    """
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()
