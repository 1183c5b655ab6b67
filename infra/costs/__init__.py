"""What the deployed request flow costs and how long it takes, from AWS list prices and our own benchmarks.

``python -m infra.costs`` prints markdown tables: the cost of one million recommendation requests hop by hop
(API Gateway REST -> API function -> SQS -> worker function -> DynamoDB, with the status polls or the long-poll),
the worker concurrency and the monthly bill at 100 and 1,000 requests/s sustained, the managed alternative (Amazon
Personalize real-time recommendations) for the same traffic, the batching-window trade-off, and the latency budget.
``python -m infra.costs --page docs/costs.md`` writes the documentation's cost page: those tables with the prose
that reads them (a test fails when the committed page is stale).

This is a model, not a bill. Prices are us-east-1 list prices without free tiers, savings plans or taxes (``PRICES``,
each with its source in ``SOURCES``); durations are our benchmarks where we have them and marked assumptions where
we do not (nothing here was measured in AWS). Every number that matters is a field of ``Assumptions``, and the CLI
takes the ones that move the result most (``--worker-ms``, ``--api-ms``, ``--window``, ``--long-poll`` ...).
No third-party package of its own: besides the standard library it reads the stack's configuration
(``infra.config``), the settings and the long-poll schedule the functions run (``lambdas``).

The modules, each importing only those above it:

* ``prices``: ``Prices``, ``PRICES``, ``SOURCES``, ``tiered``;
* ``assumptions``: the units (a 730-hour month), the poll schedules, ``Assumptions``;
* ``flow``: batching on the event source, status reads, ``flow`` (calls and durations per request);
* ``bill``: ``cost_per_million``, ``cost_per_million_events``, ``total``;
* ``capacity``: Little's law, ``worker_rps``, ``setting_for`` (``max_concurrency``);
* ``personalize``: ``personalize_cost``, the managed alternative;
* ``latency``: ``latency_budget``, ``cold_start_hops``;
* ``report``: the tables and the printed report; ``page``: the docs page around them;
* ``__main__``: the CLI.
"""
