"""Alarms on what needs a human (dead letters, a stalled queue, worker errors and throttles, API 5xx, the tables'
writes); a monthly cost budget; a dashboard."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

FIVE_MINUTES = cdk.Duration.minutes(5)


@dataclass(frozen=True)
class MonitoringProps:
    """What to watch and the thresholds."""

    api: apigw.RestApi
    api_function: lambda_.Function
    queue: sqs.Queue
    dlq: sqs.Queue
    worker: lambda_.Function
    oldest_message_alarm_s: int
    api_5xx_threshold: int
    alarm_topic_arn: str | None
    dashboard: bool
    tables: tuple[dynamodb.ITable, ...] = ()
    write_units_alarm: int = 100_000
    budget_usd: float = 0.0


class Monitoring(Construct):
    """``alarms`` (by short name) and, optionally, ``dashboard``."""

    def __init__(self, scope: Construct, id: str, *, props: MonitoringProps) -> None:
        super().__init__(scope, id)
        p = props
        # Missing data means no traffic, which is healthy for every alarm here.
        ok_when_missing = cw.TreatMissingData.NOT_BREACHING
        gte = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        specs = {
            "DeadLetters": (
                # Visible: dead letters waiting; received: dead letters the DLQ consumer already picked up.
                cw.MathExpression(
                    expression="MAX([visible, received])",
                    using_metrics={
                        "visible": p.dlq.metric_approximate_number_of_messages_visible(statistic="Maximum"),
                        "received": p.dlq.metric_number_of_messages_received(statistic="Sum"),
                    },
                    period=cdk.Duration.minutes(1),
                    label="Dead letters",
                ),
                1,
                "Requests failed every attempt and reached the dead-letter queue (their requests read FAILED): "
                "read the worker's logs for the request ids.",
            ),
            "QueueAge": (
                p.queue.metric_approximate_age_of_oldest_message(period=cdk.Duration.minutes(1), statistic="Maximum"),
                p.oldest_message_alarm_s,
                "The worker is not keeping up (or not running): the oldest queued request is getting old.",
            ),
            "WorkerErrors": (
                p.worker.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                1,
                "The worker failed whole invocations (crash or timeout), not single records.",
            ),
            "WorkerThrottles": (
                p.worker.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                1,
                "The worker was throttled: account concurrency is exhausted.",
            ),
            "Api5xx": (
                p.api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
                p.api_5xx_threshold,
                "The API answered 5xx (a handler error, or the queue unavailable).",
            ),
        }
        if p.tables:
            specs["TableWrites"] = (
                cw.MathExpression(
                    expression=" + ".join(f"w{i}" for i in range(len(p.tables))),
                    using_metrics={
                        f"w{i}": t.metric_consumed_write_capacity_units(period=FIVE_MINUTES, statistic="Sum")
                        for i, t in enumerate(p.tables)
                    },
                    period=FIVE_MINUTES,
                    label="Write units consumed",
                ),
                p.write_units_alarm,
                "The tables consumed more write units in 5 minutes than expected: a flood of requests or events, or "
                "a runaway client; on demand, every unit is billed.",
            )
        self.alarms: dict[str, cw.Alarm] = {}
        for name, (metric, threshold, description) in specs.items():
            self.alarms[name] = cw.Alarm(
                self,
                name,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=gte,
                treat_missing_data=ok_when_missing,
                alarm_description=description,
            )
        if p.alarm_topic_arn:
            topic = sns.Topic.from_topic_arn(self, "AlarmTopic", p.alarm_topic_arn)
            for alarm in self.alarms.values():
                alarm.add_alarm_action(cw_actions.SnsAction(topic))
                alarm.add_ok_action(cw_actions.SnsAction(topic))
        self.budget: budgets.CfnBudget | None = None
        if p.budget_usd > 0:
            self.budget = self._budget(p.budget_usd, p.alarm_topic_arn)

        self.dashboard: cw.Dashboard | None = None
        if p.dashboard:
            self.dashboard = cw.Dashboard(self, "Dashboard", default_interval=cdk.Duration.hours(3))
            self.dashboard.add_widgets(
                cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=3)
            )
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title="API requests and errors",
                    left=[p.api.metric_count(period=FIVE_MINUTES)],
                    right=[
                        p.api.metric_client_error(period=FIVE_MINUTES),
                        p.api.metric_server_error(period=FIVE_MINUTES),
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title="API latency (p50, p99)",
                    left=[
                        p.api.metric_latency(period=FIVE_MINUTES, statistic="p50"),
                        p.api.metric_latency(period=FIVE_MINUTES, statistic="p99"),
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Queue depth and oldest message",
                    left=[
                        p.queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
                        p.dlq.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
                    ],
                    right=[p.queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum")],
                    width=8,
                ),
            )
            self.dashboard.add_widgets(
                cw.GraphWidget(
                    title="Worker invocations, errors, throttles",
                    left=[
                        p.worker.metric_invocations(period=FIVE_MINUTES),
                        p.worker.metric_errors(period=FIVE_MINUTES),
                        p.worker.metric_throttles(period=FIVE_MINUTES),
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Worker duration (p50, p99)",
                    left=[
                        p.worker.metric_duration(period=FIVE_MINUTES, statistic="p50"),
                        p.worker.metric_duration(period=FIVE_MINUTES, statistic="p99"),
                    ],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Concurrent executions",
                    left=[
                        p.worker.metric("ConcurrentExecutions", period=FIVE_MINUTES, statistic="Maximum"),
                        p.api_function.metric("ConcurrentExecutions", period=FIVE_MINUTES, statistic="Maximum"),
                    ],
                    width=8,
                ),
            )

    def _budget(self, amount: float, topic_arn: str | None) -> budgets.CfnBudget:
        """A monthly cost budget (the account's spend: Budgets cannot filter by stack without cost allocation tags
        turned on): 80% of it spent, and a forecast over 100%, notify the alarm topic (whose policy must let
        budgets.amazonaws.com publish)."""
        notifications = []
        if topic_arn:
            subscribers = [budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=topic_arn)]
            for kind, percent in (("ACTUAL", 80), ("FORECASTED", 100)):
                notifications.append(
                    budgets.CfnBudget.NotificationWithSubscribersProperty(
                        notification=budgets.CfnBudget.NotificationProperty(
                            notification_type=kind,
                            comparison_operator="GREATER_THAN",
                            threshold=percent,
                            threshold_type="PERCENTAGE",
                        ),
                        subscribers=subscribers,
                    )
                )
        return budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=amount, unit="USD"),
            ),
            notifications_with_subscribers=notifications or None,
        )
