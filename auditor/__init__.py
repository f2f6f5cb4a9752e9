"""Backscatter Auditor: find and fix every way a mail site generates backscatter."""

__version__ = "0.1.0"
