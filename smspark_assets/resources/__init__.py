"""Typed Dagster resources. Each concern has an interface and one implementation per environment."""
