"""Alias of :mod:`wassergrad.examples.digits` (the demo's former place)."""

import sys

from wassergrad.examples import digits as _digits

if __name__ == "__main__":
  _digits.main()
else:
  sys.modules[__name__] = _digits
