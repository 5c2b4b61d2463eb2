"""Worked examples of custom algorithms in SageMaker's script mode, runnable by the local service
and on AWS."""

# The scikit-learn logistic regression the demo trains as its custom algorithm.
SKLEARN_ENTRY_POINT = "smspark_assets.local.script_examples.sklearn_logistic"
