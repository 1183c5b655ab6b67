"""The HTTP API: Powertools REST resolver over the service modules."""
