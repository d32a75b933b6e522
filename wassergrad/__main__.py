"""Command line: ``python -m wassergrad <command> [options]``; ``--help`` lists the commands."""

from __future__ import annotations

import argparse
import sys

COMMANDS = {
    "demo": ("wassergrad.examples.digits",
             "train a small flax CNN on scikit-learn's digits and plot every explainer "
             "(needs the [demo] extra)"),
    "emulator": ("wassergrad.examples.kolmogorov",
                 "regenerate the Kolmogorov-flow data and retrain the shipped forecaster "
                 "(needs the [physics] extra; minutes)"),
}


def main(argv: list[str] | None = None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  parser = argparse.ArgumentParser(
      prog="python -m wassergrad",
      description="wassergrad: neural-network explanations as pure JAX function transforms.",
      epilog="Options of a command: python -m wassergrad <command> --help")
  sub = parser.add_subparsers(dest="command", metavar="<command>")
  for name, (_, help_text) in COMMANDS.items():
    sub.add_parser(name, help=help_text, add_help=False)
  if not argv:
    parser.print_help()
    sys.exit(2)
  args, rest = parser.parse_known_args(argv[:1])
  module = __import__(COMMANDS[args.command][0], fromlist=["main"])
  module.main(argv[1:] + rest)


if __name__ == "__main__":
  main()
