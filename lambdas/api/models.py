"""The API's request and response models (pydantic); the OpenAPI document is generated from them.

Requests are strict: unknown fields, wrong JSON types (``"k": "10"``, ``"exclude_seen": 1``) and two request
kinds at once are refused rather than coerced. Responses leave out fields that are ``None``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_serializer,
    model_validator,
)

# The rating scale the API accepts (MovieLens); the worker checks again against the served model's own scale.
RATING_MIN, RATING_MAX = 0.5, 5.0
MAX_K = 100
MAX_RATINGS = 500
# One DynamoDB transaction (at most 100 writes) holds the request, its Idempotency-Key record and a pointer per user.
MAX_BATCH_USERS = 98
MAX_GENRES = 20
MAX_EVENTS = 100  # per POST /events: one DynamoDB transaction holds at most 100 writes
MAX_TIMESTAMP = 4_102_444_800  # 2100-01-01, in epoch seconds: the schema's bound
# An event's timestamp may run ahead of the API's clock by this much (a client's clock drifts); further is refused.
FUTURE_SKEW_S = 300
REQUEST_KINDS = ("user_id", "ratings", "similar_to", "user_ids", "profile_of")
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

MAX_ID_LENGTH = 64
ASCII_SPACE = " \t\n\r\f\v"
NOT_BLANK = r"[^ \t\n\r\f\v]"


def _integral(value: Any) -> Any:
    """JSON Schema counts 10.0 as an integer: take it as 10 (a fractional number, a bool or a string stays refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check_id(value: Any) -> Any:
    # One clear error instead of pydantic's one-per-union-branch messages; no coercion (true, "", "  " refused;
    # 19.0 is the integer 19, as JSON Schema has it).
    value = _integral(value)
    blank = isinstance(value, str) and not value.strip(ASCII_SPACE)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or blank:
        raise ValueError(f"an id must be an integer or a non-empty string of at most {MAX_ID_LENGTH} characters")
    if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
        raise ValueError(f"an id must be at most {MAX_ID_LENGTH} characters")
    return value


# Ids are opaque: an integer-id catalogue accepts 19 and "19" alike.
Id = Annotated[
    # the pattern (a character other than ASCII white space) is what _check_id enforces, said in the schema; ASCII
    # only, because regex engines disagree on which other characters are white space (Python's counts U+001E)
    int | Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=NOT_BLANK)],
    BeforeValidator(_check_id),
    Field(description="A user or movie id: an integer or a string of 1-64 characters"),
]
# JSON object keys are always strings.
MovieKey = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
Rating = Annotated[float, Field(strict=True, ge=RATING_MIN, le=RATING_MAX, allow_inf_nan=False)]
Genre = Annotated[str, StringConstraints(min_length=1, max_length=64)]
RequestKind = Literal["user", "cold_start", "similar", "batch", "profile"]
Status = Literal["PENDING", "COMPLETED", "FAILED"]


def _no_default(schema: dict[str, Any]) -> None:
    # An absent request kind is absent, not null: the document shows no "default": null that a client could send.
    schema.pop("default", None)


class ListOptions(BaseModel):
    """What a list holds and shows: shared by every request kind and by ``POST /me/recommendations``."""

    model_config = ConfigDict(extra="forbid", title="ListOptions")

    k: Annotated[StrictInt, BeforeValidator(_integral)] = Field(
        10, ge=1, le=MAX_K, description="How many movies per list"
    )
    exclude_seen: StrictBool = Field(True, description="Leave out movies the user has rated (or gave in `ratings`)")
    genres: list[Genre] | None = Field(
        None, max_length=MAX_GENRES, description="Only movies with at least one of these genres (case-insensitive)"
    )
    exclude_genres: list[Genre] | None = Field(None, max_length=MAX_GENRES, description="No movie with these genres")
    include_metadata: StrictBool = Field(True, description="Titles, years and genres with every movie")
    explain: StrictBool = Field(
        True,
        description=(
            "Reasons with every movie (`reasons`; personalised movies also `match` and their score's shares). "
            "`false` saves the work (under a millisecond at 9,700 movies)"
        ),
    )
    include_history: StrictBool = Field(
        False, description="With `user_id`/`user_ids`: the user's highest-rated movies in the training data"
    )
    include_popular: StrictBool = Field(
        False,
        description=(
            "With `user_id`: also the popularity ranking (`popular`) under the same filters and exclude-seen rule, "
            "to compare personalised with popular recommendations; ignored with the other request kinds"
        ),
    )


class RecommendationRequest(ListOptions):
    """A request: exactly one of ``user_id``, ``ratings``, ``similar_to``, ``user_ids``, ``profile_of``.

    The request kinds are optional but never null, and the JSON schema says "exactly one" as ``oneOf`` over their
    ``required`` lists, so that a request valid by the published document is never refused for its shape.
    """

    model_config = ConfigDict(
        extra="forbid",
        title="RecommendationRequest",
        json_schema_extra={"oneOf": [{"required": [kind]} for kind in REQUEST_KINDS]},
    )

    user_id: Id = Field(  # type: ignore[assignment]  # absent: None; a null is refused
        None,
        description="A known user (an unknown one gets the popularity ranking)",
        json_schema_extra=_no_default,
    )
    ratings: dict[MovieKey, Rating] = Field(
        None,  # type: ignore[arg-type]  # absent: None; a null is refused
        min_length=1,
        max_length=MAX_RATINGS,
        description=(
            f"A new user's ratings, {{movie_id: rating}} with ratings {RATING_MIN:g}-{RATING_MAX:g} "
            f"(1-{MAX_RATINGS} entries). Unknown movie ids are accepted and listed in the result's "
            "`unknown_movies`; if none is known the result is the popularity ranking (strategy `popular`)."
        ),
        json_schema_extra=_no_default,
    )
    similar_to: Id = Field(  # type: ignore[assignment]  # absent: None; a null is refused
        None,
        description=(
            "A movie id: movies similar to it. An id the model does not know is accepted (202) and the request "
            "ends FAILED with error code `unknown_movie`."
        ),
        json_schema_extra=_no_default,
    )
    user_ids: list[Id] = Field(
        None,  # type: ignore[arg-type]  # absent: None; a null is refused
        min_length=1,
        max_length=MAX_BATCH_USERS,
        description=f"A batch of 1-{MAX_BATCH_USERS} users",
        json_schema_extra=_no_default,
    )
    profile_of: Id = Field(  # type: ignore[assignment]  # absent: None; a null is refused
        None,
        description=(
            "A known user's profile instead of recommendations: their rating history and their taste by genre (`k`, "
            "the genre filters and the other list options do not apply). An unknown user is accepted (202) and the "
            "request ends FAILED with error code `unknown_user`."
        ),
        json_schema_extra=_no_default,
    )

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> RecommendationRequest:
        given = [name for name in REQUEST_KINDS if getattr(self, name) is not None]
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(f"exactly one of {', '.join(REQUEST_KINDS)} is required ({found})")
        return self

    @property
    def kind(self) -> RequestKind:
        if self.user_id is not None:
            return "user"
        if self.ratings is not None:
            return "cold_start"
        if self.similar_to is not None:
            return "similar"
        if self.profile_of is not None:
            return "profile"
        return "batch"


class ResponseModel(BaseModel):
    """Base of response models: unknown fields are refused, ``None`` fields are left out of the JSON."""

    model_config = ConfigDict(extra="forbid")

    # No return annotation on purpose: with one, pydantic documents the annotation instead of the model's fields.
    @model_serializer(mode="wrap")
    def _drop_none(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo):
        return {k: v for k, v in handler(self).items() if v is not None}


class SubmitResponse(ResponseModel):
    """Answer to a submitted request (202)."""

    request_id: str = Field(pattern=UUID_PATTERN)
    status: Status = Field(description="PENDING for a new request; a replayed Idempotency-Key gets the current status")
    status_url: str = Field(description="Where to poll: GET /recommendations/{request_id}")


class Reason(ResponseModel):
    """Why a movie is on a list, in the served model's terms.

    `rated`: one of the user's own rated movies and its signed share of this movie's ranking score (the shares of
    all rated movies plus `share_baseline` add up to the score). `liked_together` (similar movies): how many
    people who rated the movie in `similar_to` 4 or more did the same for this one. `factors` (similar movies past
    the neighbour table): the cosine of the two movies' interaction factors. `popular`: the list is the popular
    one; `users` is how many people rated the movie in the training data.
    """

    kind: Literal["rated", "liked_together", "factors", "popular"]
    movie_id: int | str | None = Field(None, description="`rated`: the user's rated movie")
    title: str | None = None
    rating: float | None = Field(None, description="`rated`: the rating the user gave it")
    share: float | None = Field(None, description="`rated`: its share of the ranking score; `factors`: the cosine")
    users: int | None = Field(None, description="`liked_together`, `popular`: how many people")


class Movie(ResponseModel):
    """A movie in a result; without `include_metadata` only the id and scores are present."""

    movie_id: int | str
    title: str | None = None
    year: int | None = None
    genres: list[str] | None = None
    score: float | None = Field(
        None, description="The ranking score, what the list is ordered by (popular: the number of ratings)"
    )
    match: float | None = Field(
        None,
        description=(
            "Personalised lists: the share of the catalogue, in percent, that ranks below this movie for the user; "
            "a function of `score`, so it never increases down a list"
        ),
    )
    predicted_rating: float | None = Field(
        None,
        description=(
            "The rating head's prediction of the user's rating; the list is ordered by `score`, so it need not "
            "fall down the list"
        ),
    )
    rating: float | None = Field(None, description="The user's own rating (history)")
    reasons: list[Reason] | None = Field(
        None,
        description=(
            "Up to 3 reasons (`explain`), first the rated movie whose removal would move this one furthest down "
            "the list"
        ),
    )
    share_other_ratings: float | None = Field(
        None, description="`rated` reasons: the share of the user's other rated movies"
    )
    share_baseline: float | None = Field(
        None,
        description=(
            "What the user's ratings do not explain (the movie's biases, the prior, the deep branch, and what the "
            "first-order shares leave): score = reasons' shares + share_other_ratings + share_baseline"
        ),
    )


class Produced(ResponseModel):
    """Which model produced a result: its version and, while a candidate is tried on a share of users
    (contract.serving), the variant the user is assigned to and the experiment."""

    model_version: str
    variant: Literal["served", "candidate"] = Field(
        "served", description="`candidate` for a user in the share of an experiment's candidate model, else `served`"
    )
    experiment: str | None = Field(None, description="The experiment running when the result was made, if any")


class UserResult(Produced):
    """One user's list: a known user, a cold-start user or the popularity fallback."""

    strategy: Literal["personalized", "popular", "cold_start"]
    user_id: int | str | None = None
    items: list[Movie]
    events_used: int | None = Field(
        None,
        description=(
            "With `user_id`, when the user has events (POST /events) newer than the model: how many ratings were "
            "folded in (the last one per movie the model knows). Strategy `personalized` with events: the trained "
            "user updated by them; `cold_start`: a user the model does not know, from their events alone."
        ),
    )
    history: list[Movie] | None = None
    popular: list[Movie] | None = Field(
        None, description="With `include_popular`: the most-rated movies under the same filters (score: ratings)"
    )
    unknown_movies: list[int | str] | None = Field(None, description="Movie ids in `ratings` the model does not know")


class SimilarResult(Produced):
    """Movies similar to ``movie`` in ``items``, best first: its nearest neighbours by co-occurrence in the training
    ratings (the artifact's neighbour table; older artifacts: cosine similarity of the model's item factors)."""

    strategy: Literal["similar"]
    movie: Movie
    items: list[Movie]


class GenreTaste(ResponseModel):
    """One genre in a user's ratings."""

    genre: str
    count: int = Field(description="How many of the user's rated movies have this genre")
    share: float = Field(description="That count over the user's number of ratings (a movie can have several genres)")
    mean_rating: float = Field(description="The user's mean rating of those movies")
    liked: int = Field(description="How many of them the user rated 4 or more")


class ProfileResult(Produced):
    """A known user's profile: ratings summary, taste by genre (most-rated genre first) and highest-rated movies."""

    strategy: Literal["profile"]
    user_id: int | str
    n_ratings: int
    mean_rating: float
    genres: list[GenreTaste]
    history: list[Movie] = Field(description="Highest-rated first (most recent first among equal ratings)")


class BatchResult(Produced):
    """One list per requested user, in request order."""

    strategy: Literal["batch"]
    results: list[UserResult]


class ErrorDetail(ResponseModel):
    field: str = Field(description="Where: e.g. `body.k`, `header.Idempotency-Key`")
    message: str


class ErrorBody(ResponseModel):
    code: str = Field(description="Machine-readable, e.g. `validation_error`, `unknown_movie`")
    message: str
    details: list[ErrorDetail] | None = None


class ErrorResponse(ResponseModel):
    """Every error answer has this shape."""

    error: ErrorBody


class StatusResponse(ResponseModel):
    """A request's state; ``result`` when COMPLETED, ``error`` when FAILED."""

    request_id: str = Field(pattern=UUID_PATTERN)
    status: Status
    kind: RequestKind
    created_at: str = Field(description="ISO 8601, UTC")
    updated_at: str = Field(description="ISO 8601, UTC")
    expires_at: str = Field(description="When the request and its result are deleted (ISO 8601, UTC)")
    model_version: str | None = None
    result: UserResult | SimilarResult | BatchResult | ProfileResult | None = None
    error: ErrorBody | None = None


class CatalogueMovie(ResponseModel):
    """A movie of the served catalogue, with how often and how well it was rated in the training data."""

    movie_id: int | str
    title: str
    year: int | None = None
    genres: list[str]
    n_ratings: int
    mean_rating: float


class MovieList(ResponseModel):
    """``GET /movies``: title matches (best first) or, without ``q``, the most-rated movies."""

    model_version: str
    order: Literal["title_match", "popular"]
    query: str | None = None
    total: int = Field(description="How many movies match (all pages)")
    offset: int
    movies: list[CatalogueMovie]


class DatasetInfo(ResponseModel):
    name: str | None = None
    n_ratings: int | None = None
    n_users: int | None = None
    n_items: int | None = None
    rating_scale: list[float] | None = None


class ModelCard(ResponseModel):
    """``GET /model``: the served model, its training data and held-out metrics (from its artifact's manifest)."""

    model_version: str
    created: str | None = Field(None, description="When the artifact was exported (ISO 8601, UTC)")
    trained: str | None = Field(None, description="When the model was trained (ISO 8601, UTC)")
    model_kind: str | None = None
    n_users: int | None = None
    n_movies: int | None = None
    dataset: DatasetInfo | None = None
    split: str | None = None
    metrics: dict[str, float] = Field(description="Held-out metrics (rmse, ndcg@10, ...)")
    rating_scale: list[float] | None = None
    similarity: str | None = Field(None, description="How similar movies are ranked")
    genres: list[str]
    example_users: list[int | str] = Field(description="A few user ids of the training data, to try")


EventId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=r"^[\x21-\x7e]+$")]


class Event(BaseModel):
    """One rating a user gave since the served model was trained."""

    model_config = ConfigDict(extra="forbid")

    movie_id: Id
    rating: Rating
    timestamp: Annotated[StrictInt, BeforeValidator(_integral)] = Field(  # type: ignore[assignment]  # absent: None; a null is refused
        None,
        ge=0,
        le=MAX_TIMESTAMP,
        description=(
            "When the user rated (epoch seconds), at most 5 minutes ahead of the API's clock (later: 422); absent: "
            "when the API stores it"
        ),
        json_schema_extra=_no_default,
    )
    event_id: EventId = Field(  # type: ignore[assignment]  # absent: None; a null is refused
        None,
        description=(
            "A client-chosen id (printable ASCII, no spaces): sending the same event id again for the user replaces "
            "that event instead of adding one, so a retried call is harmless"
        ),
        json_schema_extra=_no_default,
    )

    request_id: Annotated[str, StringConstraints(pattern=UUID_PATTERN)] = Field(  # type: ignore[assignment]  # absent: None; a null is refused
        None,
        description=(
            "The recommendation request whose list the rated movie was shown in, when the rating came from one "
            "(kept with the event for attribution)"
        ),
        json_schema_extra=_no_default,
    )

    @model_validator(mode="after")
    def _not_in_the_future(self) -> Event:
        if self.timestamp is not None and self.timestamp > time.time() + FUTURE_SKEW_S:
            raise ValueError(
                f"timestamp {self.timestamp} is in the future (more than {FUTURE_SKEW_S} s ahead of the API's clock)"
            )
        return self


def _check_distinct_event_ids(events: list[Event]) -> None:
    ids = [e.event_id for e in events if e.event_id is not None]
    if len(ids) != len(set(ids)):
        raise ValueError("event_id values must differ within one call")


class EventsRequest(BaseModel):
    """``POST /events``: a user's new ratings, stored all together or not at all."""

    model_config = ConfigDict(extra="forbid", title="EventsRequest")

    user_id: Id
    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS, description=f"1-{MAX_EVENTS} ratings")

    @model_validator(mode="after")
    def _distinct_event_ids(self) -> EventsRequest:
        _check_distinct_event_ids(self.events)
        return self


class EventsResponse(ResponseModel):
    """The events as stored."""

    user_id: int | str
    stored: int = Field(description="How many events were stored (all of the call's)")
    event_ids: list[str] = Field(description="Each event's id, in the call's order (generated where none was given)")
    unknown_movies: list[int | str] = Field(
        description="Movie ids the served model does not know: stored, but used only once a model knows them"
    )
    model_version: str = Field(description="The served model the movie ids and ratings were checked against")


class ForgetResponse(ResponseModel):
    """``DELETE /users/{user_id}``: what was deleted."""

    user_id: str
    events_deleted: int = Field(description="The user's stored events")
    lists_deleted: int = Field(0, description="The lists the user was shown, kept to count what they did next")
    requests_deleted: int = Field(description="Requests naming the user, with their results (table and bucket)")


class MyEventsRequest(BaseModel):
    """``POST /me/events``: the signed-in person's new ratings (their user id comes from their token)."""

    model_config = ConfigDict(extra="forbid", title="MyEventsRequest")

    events: list[Event] = Field(min_length=1, max_length=MAX_EVENTS, description=f"1-{MAX_EVENTS} ratings")

    @model_validator(mode="after")
    def _distinct_event_ids(self) -> MyEventsRequest:
        _check_distinct_event_ids(self.events)
        return self

    def for_user(self, user_id: int | str) -> EventsRequest:
        return EventsRequest(user_id=user_id, events=self.events)


class Account(ResponseModel):
    """``GET /me``: who the token says the caller is, and the user id their data are kept under."""

    sub: str = Field(description="The account's subject (the token's `sub`)")
    user_id: int | str = Field(
        description=(
            "The user id the account's ratings and recommendations are kept under: a data-set user an operator "
            "linked to the account, else the account's own id (`sub`)"
        )
    )
    linked: bool = Field(description="Whether an operator linked the account to a user of the training data")
    email: str | None = Field(None, description="The account's e-mail address, from the token")
