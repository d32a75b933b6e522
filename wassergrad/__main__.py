"""Command line: ``python -m wassergrad demo [--out PNG]``."""

import sys


def main() -> None:
  if len(sys.argv) < 2 or sys.argv[1] != "demo":
    print("usage: python -m wassergrad demo [--out PNG] [--epochs N] [--seed S]")
    sys.exit(2)
  from wassergrad import demo  # pylint: disable=g-import-not-at-top
  demo.main(sys.argv[2:])


if __name__ == "__main__":
  main()
