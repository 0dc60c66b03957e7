# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) smartmx.exim contributors

from ansible.errors import AnsibleFilterError
from ansible_collections.smartmx.exim.plugins.module_utils._drift import (
    DriftError,
    drift_report,
    metrics,
    routing_plan,
    summary_text,
)


def drift_report_filter(data, **options):
    """Jinja2 adapter for drift_report."""
    try:
        return drift_report(data, **options)
    except DriftError as exc:
        raise AnsibleFilterError(f"smartmx.exim.drift_report: {exc}") from exc


def drift_routing_plan_filter(table, domain, size=200, seed=0, priority_cap=None):
    """Jinja2 adapter for routing_plan."""
    try:
        return routing_plan(table, domain, size=size, seed=seed, priority_cap=priority_cap)
    except DriftError as exc:
        raise AnsibleFilterError(f"smartmx.exim.drift_routing_plan: {exc}") from exc


def drift_metrics_filter(report, host, now):
    """Jinja2 adapter for metrics."""
    try:
        return metrics(report, host, now)
    except DriftError as exc:
        raise AnsibleFilterError(f"smartmx.exim.drift_metrics: {exc}") from exc


def drift_summary_filter(report, report_path=None):
    """Jinja2 adapter for summary_text."""
    return summary_text(report, report_path)


class FilterModule:
    """smartmx.exim.drift_report, drift_routing_plan, drift_metrics and drift_summary."""

    def filters(self):
        return {
            "drift_report": drift_report_filter,
            "drift_routing_plan": drift_routing_plan_filter,
            "drift_metrics": drift_metrics_filter,
            "drift_summary": drift_summary_filter,
        }
