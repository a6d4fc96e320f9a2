"""The version, in one place (the package, the artifact format and the CLI read it here)."""

__version__ = "0.1.0"
