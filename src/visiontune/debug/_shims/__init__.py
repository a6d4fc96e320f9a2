"""Import-path shims put on a script job's path only (never installed as top-level packages)."""
