"""Worked examples of custom algorithms in SageMaker's script mode, runnable by the local service
and on AWS."""
