"""Stages over real files and a real ledger, or against the sandbox."""
