"""`python -m pipeline.model_store`: where the model store is, what it holds and how big it
is; `... prune --unused-days N` removes models not used for N days, `... prune --all`
empties it. Models removed train again when a sweep next needs them."""

from __future__ import annotations

import argparse
import logging
import time

from pipeline.core.errors import ConfigError
from pipeline.core.runner import run_stage
from pipeline.model_store.store import MAX_SIZE_ENV, ModelStore, max_bytes, store_location

log = logging.getLogger(__name__)
DAY_S = 86400


def show(store: ModelStore) -> None:
    entries = store.entries()
    size = sum(store.size_of(folder) for folder in entries)
    log.info("%s: %d models, %.1f MB of at most %.1f MB (%s)", store.root, len(entries),
             size / 1e6, max_bytes() / 1e6, MAX_SIZE_ENV)  # fmt: skip
    if entries:
        used = sorted(folder.stat().st_mtime for folder in entries)
        log.info("last used: newest %s, oldest %s", _ago(used[-1]), _ago(used[0]))


def _ago(stamp: float) -> str:
    days = (time.time() - stamp) / DAY_S
    return f"{days:.1f} days ago" if days >= 1 else f"{days * 24:.1f} hours ago"


def prune(store: ModelStore, unused_days: float | None, everything: bool) -> None:
    if everything:
        removed = store.remove_unused_since(-DAY_S)  # "unused since tomorrow": every model
    elif unused_days is not None:
        removed = store.remove_unused_since(unused_days * DAY_S)
    else:
        raise ConfigError("prune needs --unused-days N or --all")
    log.info("removed %d models from %s", len(removed), store.root)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.model_store", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    pruning = commands.add_parser("prune", help="remove models from the store")
    pruning.add_argument("--unused-days", type=float, help="models not used for this many days")
    pruning.add_argument("--all", action="store_true", help="every model")
    args = parser.parse_args(argv)
    store = ModelStore(store_location())

    def body() -> None:
        if args.command == "prune":
            prune(store, args.unused_days, args.all)
        show(store)

    run_stage("model_store", body)


if __name__ == "__main__":
    main()
