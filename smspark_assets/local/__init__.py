"""The embedded local stack: a SageMaker (+ runtime) and DynamoDB service on 127.0.0.1 that really trains and serves."""
