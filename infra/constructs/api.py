"""The REST API: ``POST /recommendations``, ``GET /recommendations/{request_id}``, ``POST /events``,
``DELETE /users/{user_id}``, ``GET /movies``, ``GET /model`` (and the OpenAPI document).

Edge checks only reject what should never cost an invocation (a body that is not JSON, a missing path
parameter, no API key, over the throttle); the contract itself (types, ranges, unknown fields) is validated once,
in the handler, by the same pydantic models the OpenAPI document is generated from, so the deployed API and the
local stack answer every request alike. API Gateway's own refusals use the handler's error shape
``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import checkov
from infra.constructs.function import FunctionProps, PythonFunction
from infra.nag import acknowledge

ERROR_TEMPLATE = '{"error":{"code":"%s","message":%s}}'
CORS_HEADERS = ["Content-Type", "Idempotency-Key", "X-Api-Key", "Authorization", "X-Amz-Date", "X-Amz-Security-Token"]


@dataclass(frozen=True)
class ApiProps:
    """The API function and the edge settings."""

    function: FunctionProps
    auth: str  # "api_key" or "iam"
    throttle_rate: float
    throttle_burst: int
    quota_per_day: int
    cors_origins: tuple[str, ...]
    stage_name: str
    log_retention: logs.RetentionDays
    cloudwatch_role: bool
    # People's accounts: the personal routes (/me...) take this pool's ID tokens (None: no personal routes)
    user_pool: cognito.IUserPool | None = None


class RecommendationsApi(Construct):
    """``api`` (REST, regional), ``handler`` (the API function), ``api_key`` and ``usage_plan`` (api_key auth)."""

    def __init__(self, scope: Construct, id: str, *, props: ApiProps) -> None:
        super().__init__(scope, id)
        self.handler = PythonFunction(self, "Handler", props=props.function)
        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=props.log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        use_key = props.auth == "api_key"
        method_options = (
            apigw.MethodOptions(api_key_required=True)
            if use_key
            else apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM)
        )
        cors = None
        if props.cors_origins:
            cors = apigw.CorsOptions(
                allow_origins=list(props.cors_origins),
                allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                allow_headers=CORS_HEADERS,
                max_age=cdk.Duration.hours(1),
            )
        self.api = apigw.RestApi(
            self,
            "Api",
            description="Movie recommendations: submit a request, poll its result",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            default_method_options=method_options,
            default_cors_preflight_options=cors,
            # Access logs need the account's API Gateway CloudWatch role (one per account and region).
            cloud_watch_role=props.cloudwatch_role,
            deploy_options=apigw.StageOptions(
                stage_name=props.stage_name,
                throttling_rate_limit=props.throttle_rate,
                throttling_burst_limit=props.throttle_burst,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                # Errors only, and never request bodies (they can carry a user's ratings).
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                tracing_enabled=True,
            ),
        )
        self._gateway_responses(single_origin=props.cors_origins[0] if len(props.cors_origins) == 1 else None)

        integration = apigw.LambdaIntegration(self.handler.function, proxy=True, allow_test_invoke=False)
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        # Any JSON document: API Gateway refuses a body that does not parse; the handler checks the contract.
        body_model = self.api.add_model(
            "RequestBody",
            content_type="application/json",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4,
                title="RecommendationRequestBody",
                description="Parsed by API Gateway; validated by the handler against lambdas/api/openapi.json",
            ),
        )
        recommendations = self.api.root.add_resource("recommendations")
        recommendations.add_method(
            "POST",
            integration,
            request_validator=validator,
            request_models={"application/json": body_model},
            request_parameters={"method.request.header.Idempotency-Key": False},
        )
        recommendations.add_resource("{request_id}").add_method(
            "GET",
            integration,
            request_validator=validator,
            request_parameters={"method.request.path.request_id": True},
        )
        self.api.root.add_resource("events").add_method(
            "POST", integration, request_validator=validator, request_models={"application/json": body_model}
        )
        self.api.root.add_resource("users").add_resource("{user_id}").add_method(
            "DELETE",
            integration,
            request_validator=validator,
            request_parameters={"method.request.path.user_id": True},
        )
        # Search and model card: their query strings (q, genres, limit, offset) are checked by the handler only.
        self.api.root.add_resource("movies").add_method("GET", integration)
        self.api.root.add_resource("model").add_method("GET", integration)
        self.api.root.add_resource("openapi.json").add_method("GET", integration)
        if props.user_pool is not None:
            self._personal_routes(props.user_pool, integration, validator, body_model, use_key)

        self.api_key: apigw.IApiKey | None = None
        self.usage_plan: apigw.UsagePlan | None = None
        if use_key:
            quota = (
                apigw.QuotaSettings(limit=props.quota_per_day, period=apigw.Period.DAY) if props.quota_per_day else None
            )
            self.usage_plan = self.api.add_usage_plan(
                "UsagePlan",
                description="Default plan for the recommender's API key",
                throttle=apigw.ThrottleSettings(rate_limit=props.throttle_rate, burst_limit=props.throttle_burst),
                quota=quota,
                api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
            )
            # No value given: API Gateway generates the key, so it never appears in the template.
            self.api_key = self.api.add_api_key("ApiKey", description="Default key of the recommender API")
            self.usage_plan.add_api_key(self.api_key)
        self._suppressions(use_key, props.cloudwatch_role)
        checkov.skip(
            self.handler.function,
            "CKV_AWS_115",
            "The API function's load is bounded before it runs: by the stage's throttle (and the usage plan's, per "
            f"key: {props.throttle_rate:g} requests/s, burst {props.throttle_burst}; a call takes tens of "
            "milliseconds) and, for the page, WAF's per-IP limit. A reserved limit under that would turn bursts "
            "into Lambda throttles (5xx) instead of API Gateway's 429s; reserving enough for it would hold that "
            "share of the account's pool while idle (and Lambda keeps 100 units unreserved).",
        )

    @property
    def url(self) -> str:
        return self.api.url

    def _personal_routes(
        self,
        user_pool: cognito.IUserPool,
        integration: apigw.Integration,
        validator: apigw.IRequestValidator,
        body_model: apigw.IModel,
        use_key: bool,
    ) -> None:
        """``/me...``: API Gateway's Cognito authoriser checks the ID token (signature, issuer, audience, expiry)
        before the function runs and hands it the claims; the API key is still required (the page's, added by
        CloudFront). The authoriser caches a token's answer for 5 minutes."""
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self,
            "PeopleAuthorizer",
            cognito_user_pools=[user_pool],
            results_cache_ttl=cdk.Duration.minutes(5),
        )
        personal = {
            "authorizer": self.authorizer,
            "authorization_type": apigw.AuthorizationType.COGNITO,
            "api_key_required": use_key,
        }
        body = {"request_validator": validator, "request_models": {"application/json": body_model}}
        me = self.api.root.add_resource("me")
        me.add_method("GET", integration, **personal)
        me.add_method("DELETE", integration, **personal)
        me.add_resource("recommendations").add_method("POST", integration, **body, **personal)
        me.add_resource("profile").add_method("POST", integration, **personal)
        me.add_resource("events").add_method("POST", integration, **body, **personal)
        me.add_resource("requests").add_resource("{request_id}").add_method(
            "GET",
            integration,
            request_validator=validator,
            request_parameters={"method.request.path.request_id": True},
            **personal,
        )

    def _gateway_responses(self, single_origin: str | None) -> None:
        headers = {"Access-Control-Allow-Origin": f"'{single_origin}'"} if single_origin else None
        self.api.add_gateway_response(
            "InvalidJson",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            response_headers=headers,
            templates={"application/json": ERROR_TEMPLATE % ("invalid_json", '"the body is not valid JSON"')},
        )
        self.api.add_gateway_response(
            "BadParameters",
            type=apigw.ResponseType.BAD_REQUEST_PARAMETERS,
            status_code="400",
            response_headers=headers,
            templates={"application/json": ERROR_TEMPLATE % ("invalid_request", "$context.error.messageString")},
        )
        # A missing or wrong x-api-key: the same answer as the local gateway's (lambdas/api/openapi.json, 403).
        self.api.add_gateway_response(
            "InvalidApiKey",
            type=apigw.ResponseType.INVALID_API_KEY,
            status_code="403",
            response_headers=headers,
            templates={
                "application/json": ERROR_TEMPLATE
                % ("forbidden", '"a valid API key is required in the x-api-key header"')
            },
        )
        for name, kind in (
            ("Default4xx", apigw.ResponseType.DEFAULT_4_XX),
            ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
        ):
            self.api.add_gateway_response(
                name,
                type=kind,
                response_headers=headers,
                templates={
                    "application/json": ERROR_TEMPLATE
                    % ("$context.error.responseType.toLowerCase()", "$context.error.messageString")
                },
            )

    def _suppressions(self, use_key: bool, cloudwatch_role: bool) -> None:
        checkov.skip(
            self.api.deployment_stage,
            "CKV_AWS_120",
            "No stage cache: POST answers and request statuses are per request and change as the worker finishes "
            "(a cached status would be stale); search and the model card are answered in milliseconds from small "
            "files and change when a model is published. A cache cluster bills from $0.02/hour (~$14/month) even "
            "when idle. CloudFront caches the static page.",
        )
        checkov.skip(self.access_logs, "CKV_AWS_158", checkov.LOG_GROUP_KMS)
        if use_key:
            acknowledge(
                self.api,
                "AwsSolutions-APIG4",
                "Every method requires an API key bound to a throttled usage plan (-c auth=iam switches to SigV4); "
                "the API serves recommendations, no per-user secrets.",
            )
            acknowledge(
                self.api,
                "AwsSolutions-COG4",
                "No Cognito user pool: the callers are services holding an API key (or IAM with -c auth=iam).",
            )
        else:
            acknowledge(
                self.api, "AwsSolutions-COG4", "IAM (SigV4) authorization is used instead of a Cognito authorizer."
            )
        if cloudwatch_role:
            acknowledge(
                self.api,
                "AwsSolutions-IAM4",
                "The account-level API Gateway logging role uses the AWS policy made for exactly that purpose.",
                findings=[
                    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                ],
            )
