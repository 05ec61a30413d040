"""Dashboards, statistics and reports: figures aggregated in SQL (docs/reports.md)."""
