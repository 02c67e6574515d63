"""The version of stopgate, server and client alike: the one place it is written.

Both distributions read it when they are built (`[tool.hatch.version]` in pyproject.toml and
client/pyproject.toml); it lives under client/ because the client distribution is built from that folder
alone. CHANGELOG.md says what each version holds.
"""

__version__ = "0.1.0"
