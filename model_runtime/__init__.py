"""inferstack shared model runtime: manifest, export, Engine, protocol, app."""

__version__ = "0.1.0"
