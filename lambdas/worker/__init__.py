"""The SQS worker: Powertools batch processing over the service modules."""
