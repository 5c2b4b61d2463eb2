"""Data quality and drift monitoring: a baseline from the training features, checks of a day against it.

Pure NumPy/Arrow, no Dagster (the assets in :mod:`smspark_assets.assets.drift` call it):

* :mod:`.columns` — which columns are monitored and how (numeric, categorical, one-hot groups decoded back
  to a category, ``<col>_missing`` indicators that carry a column's missing rate);
* :mod:`.psi` — decile binning and the population stability index;
* :mod:`.baseline` — ``statistics.json`` / ``constraints.json`` in the spirit of SageMaker Model Monitor;
* :mod:`.checks` — a day (features and scores) against the baseline, with warn / error bands;
* :mod:`.plot` — the drifting features as a PNG embedded in markdown;
* :mod:`.capture` — captured endpoint traffic (SageMaker data capture JSON lines) back into features.
"""

from smspark_assets.monitoring.baseline import Baseline, build_baseline
from smspark_assets.monitoring.checks import DriftReport, DriftThresholds, FeatureDrift, check_day
from smspark_assets.monitoring.columns import MonitoredColumns, infer_columns
from smspark_assets.monitoring.psi import psi

__all__ = ["Baseline", "DriftReport", "DriftThresholds", "FeatureDrift", "MonitoredColumns", "build_baseline",
           "check_day", "infer_columns", "psi"]
