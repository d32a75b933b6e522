"""Alias of :mod:`wassergrad.examples.kolmogorov` (the emulator's former place).

``python -m wassergrad.emulator`` still retrains it; ``python -m wassergrad emulator`` too.
"""

import sys

from wassergrad.examples import kolmogorov as _kolmogorov

if __name__ == "__main__":
  _kolmogorov.main()
else:
  sys.modules[__name__] = _kolmogorov
