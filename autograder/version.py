"""The autograder's version; part of every result's key, so a new version re-grades."""

__version__ = "0.1.0"
