"""sagecycle: the whole life of an XGBoost model on AWS SageMaker, as code, rehearsed offline."""

__version__ = "0.1.0"
