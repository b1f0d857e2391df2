"""Command line entry point (filled in by the CLI issue)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bodycam")
    parser.parse_args(argv)
    return 0
