"""Reporting: records of results, their terminal tables and Markdown, strict JSON, the machine line.

:mod:`~crosscheck.reporting.documents` (JSON + Markdown written atomically),
:mod:`~crosscheck.reporting.environment` (versions, commit, the machine line),
:mod:`~crosscheck.reporting.tables` (one table, for the terminal and for Markdown),
:mod:`~crosscheck.reporting.run_report` (``crosscheck run``),
:mod:`~crosscheck.reporting.probe_report` (the batch-size probe).
"""
