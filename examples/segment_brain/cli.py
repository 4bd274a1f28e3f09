"""What the example's two scripts share on the command line: one-line errors and the output folder's check."""

from __future__ import annotations

import argparse
import os


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is the one line ``<prog>: error: ...`` and exit status 2.

    argparse's own ``error`` prints the usage first, which for this many
    options wraps over several lines and pushes the message out of sight.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def check_out_folder(p: argparse.ArgumentParser, out: str) -> None:
    """``--out`` must name a folder that exists or can be created, and be writable."""
    if not out:
        p.error("--out must name a folder, got ''")
    # The nearest existing folder on the way to --out must be a writable folder.
    existing = os.path.abspath(out)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        p.error(f"--out: {existing!r} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        p.error(f"--out: the folder {existing!r} is not writable")
