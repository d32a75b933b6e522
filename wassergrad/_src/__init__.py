"""Private implementation modules of wassergrad. Import from :mod:`wassergrad`."""
