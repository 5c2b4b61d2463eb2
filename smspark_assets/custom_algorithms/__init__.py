"""Custom algorithms in SageMaker's script mode: entry points the platform ships for its own images.

On AWS each one runs in a framework (or bring-your-own) container; the embedded stack runs the same file
with SageMaker's script-mode contract. Nothing here depends on where it runs.
"""

# The scikit-learn logistic regression the demo trains as its custom algorithm (module name of the entry point).
SKLEARN_ENTRY_POINT = "smspark_assets.custom_algorithms.sklearn_logistic"
