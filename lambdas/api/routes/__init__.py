"""The API's routes, one Powertools ``Router`` per resource; ``lambdas.api.handler`` includes them."""
