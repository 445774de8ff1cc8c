"""Fidelity, utility and privacy of synthetic data, with an HTML report."""

from ._evaluate import evaluate
from ._report import EvaluationReport

__all__ = ["EvaluationReport", "evaluate"]
