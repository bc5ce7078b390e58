"""``python -m parallel_tools.emulator``: the same as ``parallel-tools emulator``."""

import argparse
import sys

from ._cli import add_arguments

parser = argparse.ArgumentParser(
    prog="python -m parallel_tools.emulator",
    description="Serve a local emulation of Parallel's Task API.",
)
add_arguments(parser)
arguments = parser.parse_args()
sys.exit(arguments.handler(arguments))
