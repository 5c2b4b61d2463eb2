"""The SageMaker side of the platform: images, hyperparameters, wire formats, serializers and deserializers."""
