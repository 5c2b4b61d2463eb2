"""After each DynamoDB write: the scores API answers what the catalog table says.

For a random sample of the written days' applications (from the Glue/Athena table ``credit_scores``),
the check reads the scores API (``ScoresApiResource``: API Gateway on AWS, the embedded stack locally)
and compares predictions. It fails (blocking, severity ERROR) on any id the API does not know or scores
differently; ids a later day has re-scored since are counted, not compared.
"""


import re

import dagster as dg
import numpy as np
import pandas as pd

from smspark_assets.assets.outputs import credit_scores_dynamodb
from smspark_assets.assets.scoring import SCORES_TABLE
from smspark_assets.resources.catalog import CatalogResource
from smspark_assets.resources.scores_api import ScoresApiResource

SAMPLE_SIZE = 200
# The ids the API serves (deploy/api/scores-openapi.yaml, ApplicationId); others cannot be asked for.
SERVABLE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
EXAMPLES = 10


def _days(context: dg.AssetCheckExecutionContext, catalog: CatalogResource) -> list[str]:
    """The days the run wrote; the latest day of the table when the run names none."""
    op_context = context.op_execution_context
    if op_context.has_partition_key_range:
        return [k for k in op_context.partition_keys if _DAY.fullmatch(k)]
    latest = catalog.query(f"SELECT max(dt) AS dt FROM {SCORES_TABLE}")
    return [str(latest["dt"].iloc[0])] if len(latest) and pd.notna(latest["dt"].iloc[0]) else []


def compare_with_api(sample: pd.DataFrame, answers: dict[str, dict]) -> dict[str, object]:
    """Compare the catalog's ``sample`` (application_id, prediction, dt) with the API's ``answers``."""
    mismatches: list[str] = []
    superseded = matched = 0
    for app_id, prediction, day in sample[["application_id", "prediction", "dt"]].itertuples(index=False):
        answer = answers.get(app_id)
        if answer is None:
            mismatches.append(f"{app_id}: the API has no score (catalog {prediction!r} on {day})")
            continue
        if answer.get("dt") and str(answer["dt"]) > str(day):
            superseded += 1  # a later day's score is the latest: nothing to compare
            continue
        served = answer.get("prediction")
        same = (served is None and pd.isna(prediction)) or (
            served is not None and pd.notna(prediction) and np.isclose(float(served), float(prediction),
                                                                       rtol=1e-9, atol=0.0))
        if same and str(answer.get("dt")) == str(day):
            matched += 1
        else:
            mismatches.append(f"{app_id}: API {served!r} (day {answer.get('dt')}), catalog {prediction!r} (day {day})")
    return {"matched": matched, "superseded": superseded, "mismatches": mismatches}


@dg.asset_check(asset=credit_scores_dynamodb, blocking=True,
                description="A sample of the written days' scores, read through the scores API, equals the "
                            "catalog table's predictions.")
def credit_scores_api_consistency(context: dg.AssetCheckExecutionContext, catalog: CatalogResource,
                                  scores_api: ScoresApiResource) -> dg.AssetCheckResult:
    days = _days(context, catalog)
    if not days:
        return dg.AssetCheckResult(passed=True, metadata={"sampled": 0, "note": "no scored day to compare"})
    listed = ", ".join(f"'{d}'" for d in days)  # days are checked against YYYY-MM-DD above
    sample = catalog.query(f"SELECT application_id, prediction, dt FROM {SCORES_TABLE} WHERE dt IN ({listed}) "
                           f"ORDER BY rand() LIMIT {SAMPLE_SIZE * 2}")
    if len(sample):
        sample["application_id"] = sample["application_id"].astype(str)
        sample = sample[sample["application_id"].map(lambda v: SERVABLE_ID.fullmatch(v) is not None)]
        sample = sample.drop_duplicates("application_id").head(SAMPLE_SIZE)
    answers = scores_api.get_scores(sample["application_id"].tolist()) if len(sample) else {}
    outcome = compare_with_api(sample, answers)
    mismatches: list[str] = outcome["mismatches"]  # type: ignore[assignment]
    if mismatches:
        context.log.error(f"the scores API disagrees with {SCORES_TABLE} on {len(mismatches)} of {len(sample)} "
                          f"sampled ids, e.g. " + "; ".join(mismatches[:EXAMPLES]))
    return dg.AssetCheckResult(
        passed=not mismatches, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"days": ", ".join(days), "sampled": len(sample), "matched": outcome["matched"],
                  "superseded_by_later_days": outcome["superseded"], "mismatched": len(mismatches),
                  "mismatch_examples": dg.MetadataValue.md("\n".join(f"- {m}" for m in mismatches[:EXAMPLES]) or "none")})
