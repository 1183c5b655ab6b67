"""The web page in headless Chromium against the local stack, used as a person would: one test per flow.

Each test locates elements by role and label, asserts with ``expect`` (which waits), never sleeps, and ends with a
screenshot. The page's own data (example users, titles) comes from the API, so the tests run on any artifact.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from infra.client import Client
from tests.web.conftest import PHONE

expect = pytest.importorskip("playwright.sync_api").expect

SERIOUS = ("serious", "critical")
# A personalised card's figure: the match, with one decimal
MATCH = re.compile(r"^(\d+\.\d)% match$")
REASON = re.compile(r"^Because you rated ")


PASSWORD = "a page password 1"
SESSION = "recommender.session"  # web/auth.js's localStorage key
WRONG = "The e-mail address or the password is wrong."


def person(site, user=None) -> dict:
    """A new confirmed account (as signing up and confirming on the page makes one), linked by an operator to
    data-set user ``user`` when given: its e-mail address, sub and refresh token."""
    from infra.accounts import running_target, sign_up
    from lambdas.service import accounts

    email = f"p{uuid.uuid4().hex[:12]}@example.com"
    made = sign_up(running_target(site), email, PASSWORD)
    if user is not None:
        earlier = accounts.account_of(site.services, user)
        if earlier is not None:  # another test's person had this user: one user, one account
            accounts.unlink(site.services, earlier)
        accounts.link(site.services, made["sub"], user)
    return {"email": email, **made}


def signed_in(page, site, user=None) -> dict:
    """The page opens signed in as a new person (the refresh token a sign-in keeps, as after a reload)."""
    who = person(site, user)
    kept = json.dumps({"refresh": who["refresh_token"], "email": who["email"]})
    page.add_init_script(f"localStorage.setItem({json.dumps(SESSION)}, {json.dumps(kept)})")
    return who


def model_card(site) -> dict:
    return Client(site.url).request("GET", "/api/model").body


def popular(site, **params) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return Client(site.url).request("GET", f"/api/movies?{query}").body["movies"]


def rated_by(site, user) -> dict[str, float]:
    """Every movie the user rated in the training data, title -> rating, from the served artifact itself."""
    from lambdas.engine import Engine

    return {m["title"]: m["rating"] for m in Engine(site.artifact_dir).history(user, n=1_000_000)}


def stars(rating: float) -> str:
    return "1 star" if rating == 1 else f"{rating:g} stars"


def match_figures(cards) -> list[float]:
    """The match figure of each card, in list order (every card must show one)."""
    figures = [card.get_by_text(MATCH).inner_text() for card in cards.all()]
    return [float(MATCH.match(text).group(1)) for text in figures]


def names_a_rated_movie(cards, rated: dict[str, float]) -> None:
    """Each card's reason opens with one of the rated movies and the rating given to it."""
    for card in cards.all():
        why = card.get_by_text(REASON).inner_text()
        assert any(why.startswith(f"Because you rated {t} {stars(r)}") for t, r in rated.items()), why


def similar_answer(site, movie_id) -> list[dict]:
    return Client(f"{site.url}/api").recommend({"similar_to": movie_id, "k": 10})["result"]["items"]


def link_words(reason: dict, title: str) -> str:
    """What a similar card says links it to ``title``."""
    if reason["kind"] == "liked_together" and reason["users"]:
        who = "1 person" if reason["users"] == 1 else f"{reason['users']:,} people"
        return f"{who} who liked {title} also liked this"
    if reason["kind"] == "liked_together":
        return f"Rated by the same people as {title}"
    return f"Close to {title} in the tastes the model learned"


def accessibility_problems(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in found if v["impact"] in SERIOUS]


def test_known_user_sees_personal_and_popular_lists_and_live_genre_filters(page, site, screenshots):
    card = model_card(site)
    user = card["example_users"][0]
    # GIVEN a person signed in whose account an operator linked to a user of the training data
    signed_in(page, site, user)
    page.goto(f"{site.url}/")

    # THEN their top 10, the popular top 10 and the movies they rated highest are shown side by side
    personal = page.locator("#user-personal li.card")
    expect(personal).to_have_count(10)
    expect(page.locator("#user-popular li.card")).to_have_count(10)
    expect(page.locator("#user-history li.card").first).to_contain_text("Rated")
    expect(page.get_by_role("heading", name="Recommended for you")).to_be_visible()
    expect(personal.first.get_by_text(MATCH)).to_be_visible()
    expect(personal.first.get_by_text(REASON)).to_be_visible()
    expect(page.locator("#view-user")).not_to_contain_text("Predicted rating")
    expect(page.locator("#user-overlap")).to_have_text(re.compile(r"\d+ of 10 also in the personal list"))

    # WHEN "only this genre" is ticked, THEN the lists follow at once, without pressing Recommend again
    genre = card["genres"][0]
    page.get_by_text("Genre filters").click()
    mine = "/api/me/recommendations"
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(mine)) as sent:
        page.locator('[data-genres="include"]').get_by_label(genre, exact=True).check()
    assert sent.value.request.post_data_json["genres"] == [genre]
    expect(page.locator("#view-user")).to_have_attribute("aria-busy", "false")
    expect(personal.first.locator(".meta")).to_contain_text(genre)
    expect(personal.last.locator(".meta")).to_contain_text(genre)
    for meta in personal.locator(".meta").all_inner_texts():
        assert genre in meta
    page.screenshot(path=screenshots / "known-user-desktop.png", full_page=True)


def test_a_request_shows_its_pending_state_while_it_is_polled(page, site):
    pending = {"left": 4, "waits": []}

    def hold(route):
        # the first long-polls end PENDING, as they do when a busy worker takes longer than the wait
        if route.request.method == "GET" and pending["left"] > 0:
            pending["left"] -= 1
            path, _, query = route.request.url.partition("?")
            pending["waits"].append(query)
            doc = {"request_id": path.rsplit("/", 1)[-1], "status": "PENDING", "kind": "user"}
            return route.fulfill(status=200, content_type="application/json", body=json.dumps(doc))
        return route.continue_()

    page.route(re.compile(r".*/api/me/requests/[0-9a-f-]{36}(\?wait=\d+)?$"), hold)
    signed_in(page, site, model_card(site)["example_users"][0])
    page.goto(f"{site.url}/#/user")
    expect(page.get_by_role("status")).to_contain_text("Finding recommendations for you")
    expect(page.locator("#view-user")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#user-personal li.card")).to_have_count(10)
    expect(page.locator("#view-user")).to_have_attribute("aria-busy", "false")
    expect(page.get_by_role("status")).to_have_text("10 recommendations for you.")
    assert pending["left"] == 0  # the page kept asking through the PENDING answers
    assert pending["waits"] == ["wait=10"] * 4  # each a long-poll


def test_a_known_users_cards_say_why_and_their_match_never_increases_down_the_list(page, site):
    user = model_card(site)["example_users"][0]
    signed_in(page, site, user)
    page.goto(f"{site.url}/#/user")
    cards = page.locator("#user-personal li.card")
    expect(cards).to_have_count(10)
    expect(page.locator("#user-match-note")).to_contain_text("the share of the catalogue that ranks below")
    # THEN the figure on each card goes down (or stays) with its place, and each card names a movie they rated
    figures = match_figures(cards)
    assert figures == sorted(figures, reverse=True), figures
    names_a_rated_movie(cards, rated_by(site, user))


def test_a_visitors_cold_start_cards_say_which_of_their_ratings_and_follow_the_order(page, site):
    # GIVEN a visitor who rated three movies of a genre earlier (kept in local storage)
    genre = model_card(site)["genres"][0]
    movies = popular(site, genres=genre, limit=3)
    given = dict(zip((m["title"] for m in movies), (5.0, 4.5, 4.0), strict=True))
    ratings = {
        str(m["movie_id"]): {
            "rating": given[m["title"]],
            "movie": {k: m.get(k) for k in ("movie_id", "title", "year", "genres")},
        }
        for m in movies
    }
    state = {"genres": [genre], "ratings": ratings, "order": [m["movie_id"] for m in movies], "skipped": []}
    page.add_init_script(f"localStorage.setItem('movie-recommender.visitor.v1', {json.dumps(json.dumps(state))})")
    page.goto(f"{site.url}/#/new")
    cards = page.locator("#new-recs li.card")
    expect(cards).to_have_count(10)
    expect(page.locator("#new-match-note")).to_be_visible()
    # THEN the cold-start list's figures never increase, and each card says which of the three ratings it follows
    figures = match_figures(cards)
    assert figures == sorted(figures, reverse=True), figures
    names_a_rated_movie(cards, given)


def test_the_reason_words_follow_the_api_reasons(page, site):
    # GIVEN an answer with reasons of every shape a personalised list can have (the status document is replaced)
    user = model_card(site)["example_users"][0]

    def rated(title, rating, share):
        return {"kind": "rated", "movie_id": title, "title": title, "rating": rating, "share": share}

    def movie(n, match, reasons):
        return {
            "movie_id": 9000 + n,
            "title": f"Film {n}",
            "score": 1 - n / 10,
            "match": match,
            "predicted_rating": 3 + n / 10,
            "reasons": reasons,
        }

    items = [
        movie(
            0, 99.96, [rated("Alien (1979)", 5.0, 0.3), rated("Heat (1995)", 4.5, 0.2), rated("Ran (1985)", 2.0, -0.1)]
        ),
        movie(1, 98.75, [rated("Up (2009)", 1.0, 0.1)]),
        movie(2, 98.75, [rated("Jaws (1975)", 4.0, 0.3), rated("Heat (1995)", 3.5, 0.2), rated("Up (2009)", 4.0, 0.1)]),
        movie(3, 50.0, [rated("Ran (1985)", 2.0, -0.1)]),
    ]
    result = {
        "strategy": "personalized",
        "user_id": user,
        "items": items,
        "model_version": "v",
        "history": [],
        "popular": [],
    }

    def answer(route):
        if route.request.method != "GET":
            return route.continue_()
        doc = {
            "request_id": route.request.url.split("?")[0].rsplit("/", 1)[-1],
            "status": "COMPLETED",
            "kind": "user",
            "result": result,
        }
        return route.fulfill(status=200, content_type="application/json", body=json.dumps(doc))

    page.route(re.compile(r".*/api/me/requests/[0-9a-f-]{36}(\?wait=\d+)?$"), answer)
    signed_in(page, site, user)
    page.goto(f"{site.url}/#/user")
    cards = page.locator("#user-personal li.card")
    expect(cards).to_have_count(4)
    # THEN only the ratings that lift a movie are named, the first with "stars", a half star as 4.5, one star singular
    expect(cards.nth(0).get_by_text(REASON)).to_have_text("Because you rated Alien (1979) 5 stars and Heat (1995) 4.5")
    expect(cards.nth(1).get_by_text(REASON)).to_have_text("Because you rated Up (2009) 1 star")
    expect(cards.nth(2).get_by_text(REASON)).to_have_text(
        "Because you rated Jaws (1975) 4 stars, Heat (1995) 3.5 and Up (2009) 4"
    )
    expect(cards.nth(3)).to_contain_text("From the model's view of this movie more than from any one of your ratings")
    # AND the match is cut to one decimal (99.96 is not 100.0), and the predicted rating is not shown
    assert match_figures(cards) == [99.9, 98.7, 98.7, 50.0]
    expect(page.locator("#user-personal")).not_to_contain_text("Predicted")


def test_a_new_person_gets_the_popular_list_and_each_card_says_how_popular(page, site):
    signed_in(page, site)  # not linked to a data-set user, no ratings yet
    page.goto(f"{site.url}/#/user")
    expect(
        page.get_by_role("heading", name="The model does not know your taste yet: the most popular movies instead")
    ).to_be_visible()
    cards = page.locator("#user-personal li.card")
    expect(cards).to_have_count(10)
    expect(page.locator("#user-match-note")).to_be_hidden()  # no match figure on a popular list
    counts = [
        int(t.split(": ")[1].split()[0].replace(",", ""))
        for t in cards.get_by_text(re.compile(r"^Popular: ")).all_inner_texts()
    ]
    # THEN the counts are the catalogue's, most-rated first, the order the list has
    assert len(counts) == 10 and counts == sorted(counts, reverse=True)
    assert counts[0] == popular(site, limit=1)[0]["n_ratings"]


def test_new_visitor_rates_with_the_keyboard_and_the_ratings_survive_a_reload(page, site, screenshots):
    genre = model_card(site)["genres"][0]
    first = popular(site, genres=genre, limit=1)[0]
    page.goto(f"{site.url}/#/new")
    view = page.locator("#view-new")

    # WHEN a person uses only the keyboard: tick a genre, show movies, rate three of them with the arrow keys
    view.get_by_label(genre, exact=True).focus()
    page.keyboard.press("Space")
    expect(view.get_by_label(genre, exact=True)).to_be_checked()
    view.get_by_role("button", name="Show movies to rate").focus()
    page.keyboard.press("Enter")
    cards = page.locator("#new-to-rate li.card")
    expect(cards.first).to_contain_text(first["title"])  # the genre's most-rated movie first
    expect(page.locator("#new-recs-note")).to_have_text("Rate 3 more movies to see recommendations.")
    cards.first.get_by_role("radio").first.focus()
    for n in range(3):
        for _ in range(7):  # 0.5 -> 4 stars
            page.keyboard.press("ArrowRight")
        expect(cards.nth(n).locator(".yours")).to_have_text("Your rating: 4")
        page.keyboard.press("Tab")  # to the next movie's stars (a rated movie has no "Haven't seen")

    # THEN recommendations appear from those ratings
    expect(page.locator("#new-recs li.card")).to_have_count(10)
    expect(page.locator("#new-recs-note")).to_have_text("From your 3 ratings.")
    expect(page.locator("#new-count")).to_have_text("You rated 3 movies.")
    rated = cards.first.locator("h3").inner_text()
    page.screenshot(path=screenshots / "new-visitor-desktop.png", full_page=True)

    # WHEN the page is reloaded, THEN the ratings are still there, and so are the recommendations
    page.reload()
    expect(page.locator("#new-count")).to_have_text("You rated 3 movies.")
    expect(cards.first.locator("h3")).to_have_text(rated)
    expect(cards.first.locator(".yours")).to_have_text("Your rating: 4")
    expect(page.locator("#new-recs li.card")).to_have_count(10)

    # WHEN "Haven't seen" is pressed on an unrated movie, THEN it goes and another takes its place
    unrated = cards.nth(3)
    skipped = unrated.locator("h3").inner_text()
    before = cards.count()
    unrated.get_by_role("button", name=re.compile("^Haven't seen")).press("Enter")
    expect(page.locator("#new-to-rate h3", has_text=re.compile(f"^{re.escape(skipped)}$"))).to_have_count(0)
    expect(page.get_by_role("status")).not_to_have_class(re.compile("pending"))
    exhausted = page.get_by_role("button", name="More movies").is_disabled()  # the genre has no more movies
    expect(cards).to_have_count(before - 1 if exhausted else before)
    expect(page.locator("#new-to-rate li:focus-within")).to_have_count(1)  # focus stays in the list

    # WHEN the visitor starts over, THEN nothing is kept
    view.get_by_role("button", name="Start over").click()
    expect(page.locator("#new-rate-section")).to_be_hidden()
    page.reload()
    expect(view.get_by_label(genre, exact=True)).not_to_be_checked()
    assert page.evaluate("localStorage.length") == 0


def test_similar_movies_from_a_type_ahead_search_and_each_result_links_on(page, site, screenshots):
    target = popular(site, limit=1)[0]
    words = target["title"].split()
    query = " ".join(words[:2]).rstrip(",").lower()
    page.goto(f"{site.url}/#/similar")
    box = page.get_by_role("combobox", name="Movie title")
    box.fill(query)
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    expect(page.get_by_role("listbox")).to_contain_text(target["title"])
    index = next(i for i, text in enumerate(options.all_inner_texts()) if text.startswith(target["title"]))
    for _ in range(index + 1):
        box.press("ArrowDown")
    box.press("Enter")
    heading = page.locator("#similar-heading")
    expect(heading).to_have_text(f"Movies similar to {target['title']}")
    results = page.locator("#similar-list li.card")
    expect(results).to_have_count(10)
    listed = [t.split(". ", 1)[1] for t in results.locator("h3").all_inner_texts()]
    assert len(listed) == 10 and target["title"] not in listed
    # AND each says what links it to the movie asked about, as the API's reasons have it
    for movie in similar_answer(site, target["movie_id"]):
        card = page.locator(f'#similar-list li.card[data-movie-id="{movie["movie_id"]}"]')
        expect(card).to_contain_text(link_words(movie["reasons"][0], target["title"]))
    page.screenshot(path=screenshots / "similar-desktop.png", full_page=True)

    # WHEN a result's own link is followed, THEN its similar movies are shown
    second = results.first.locator("h3").inner_text().split(". ", 1)[1]
    results.first.get_by_role("link", name=re.compile("^More like this")).click()
    expect(heading).to_have_text(f"Movies similar to {second}")
    expect(results).to_have_count(10)


def test_similar_cards_say_how_many_people_liked_both_movies(page, site):
    # GIVEN a popular movie whose similar list comes from the neighbour table (people who liked both)
    for movie in popular(site, limit=20):
        answer = similar_answer(site, movie["movie_id"])
        liked = [m for m in answer if m["reasons"][0]["kind"] == "liked_together" and m["reasons"][0]["users"]]
        if liked:
            break
    else:
        pytest.skip("no similar list of the 20 most-rated movies comes from the neighbour table")
    page.goto(f"{site.url}/#/similar/{movie['movie_id']}")
    cards = page.locator("#similar-list li.card")
    expect(cards).to_have_count(len(answer))
    # THEN those cards say how many people who liked it also liked them
    for m in liked:
        card = page.locator(f'#similar-list li.card[data-movie-id="{m["movie_id"]}"]')
        expect(card.get_by_text(re.compile(r"^\d[\d,]* (people|person) who liked "))).to_have_text(
            link_words(m["reasons"][0], movie["title"])
        )


def test_title_search_finds_the_trailing_article_form(page, site):
    titles = [m["title"] for m in popular(site, limit=50)]
    moved = next((t for t in titles if re.search(r", The \(\d{4}\)$", t)), None)
    if moved is None:
        pytest.skip("no 'X, The' title among the most-rated movies of this artifact")
    body = moved.rsplit(", The", 1)[0]
    page.goto(f"{site.url}/#/similar")
    page.get_by_role("combobox", name="Movie title").fill(f"the {body}")
    expect(page.get_by_role("option").first).to_contain_text(moved)


def test_user_profile_shows_taste_by_genre_and_history(page, site, screenshots):
    user = model_card(site)["example_users"][1]
    signed_in(page, site, user)
    page.goto(f"{site.url}/#/profile")
    expect(page.locator("#profile-summary")).to_contain_text("You rated")
    rows = page.locator("#profile-genres tr")
    expect(rows.first).to_be_visible()
    shares = [int(re.match(r"(\d+)%", t).group(1)) for t in page.locator(".bar-label").all_inner_texts()]
    assert shares == sorted(shares, reverse=True) and shares[0] > 0
    expect(page.locator("#profile-history li.card").first).to_contain_text("Rated")
    page.screenshot(path=screenshots / "profile-desktop.png", full_page=True)


def test_a_refused_request_is_explained_in_words(page, site):
    signed_in(page, site)  # no model was trained on this person: their profile is refused
    page.goto(f"{site.url}/#/profile")
    alert = page.locator("#view-profile").get_by_role("alert")
    expect(alert).to_have_text(re.compile("^The model does not know you yet"))
    expect(page.locator("#profile-results")).to_be_hidden()
    assert "{" not in alert.inner_text()


def test_about_shows_the_served_model(page, site, screenshots):
    card = model_card(site)
    page.goto(f"{site.url}/#/about")
    expect(page.locator("#about-card")).to_contain_text(card["model_version"])
    expect(page.locator("#about-metrics")).to_contain_text("NDCG@10")
    expect(page.locator("#about-metrics")).to_contain_text(f"{card['metrics']['ndcg@10']:.4f}")
    page.screenshot(path=screenshots / "about-desktop.png", full_page=True)


@pytest.mark.parametrize("route", ["#/user", "#/new", "#/similar/{movie}", "#/profile", "#/account", "#/about"])
def test_every_view_fits_a_phone_and_passes_the_accessibility_check(browser, site, screenshots, route):
    user = model_card(site)["example_users"][0]
    movie = popular(site, limit=1)[0]["movie_id"]
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    try:
        if route in ("#/user", "#/profile"):
            signed_in(page, site, user)
        if route == "#/new":
            page.add_init_script(
                "localStorage.setItem('movie-recommender.visitor.v1', JSON.stringify("
                f"{{genres: [{json.dumps(model_card(site)['genres'][0])}], ratings: {{}}, order: [], skipped: []}}))"
            )
        page.goto(f"{site.url}/{route.format(user=user, movie=movie)}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        if route not in ("#/about", "#/account"):
            expect(page.locator(".view:not([hidden]) li.card").first).to_be_visible()
        expect(page.get_by_role("status")).not_to_have_class(re.compile("pending"))
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{route}: the page is {width} px wide at {PHONE['width']} px"
        assert accessibility_problems(page) == []
        name = route.split("/")[1] or "home"
        page.screenshot(path=screenshots / f"{name}-phone.png", full_page=True)
    finally:
        context.close()


def test_the_desktop_views_pass_the_accessibility_check(page, site):
    signed_in(page, site, model_card(site)["example_users"][0])
    for route in ("#/user", "#/profile", "#/account", "#/about"):
        page.goto(f"{site.url}/{route}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.get_by_role("status")).not_to_have_class(re.compile("pending"))
        assert accessibility_problems(page) == [], route


def test_a_known_user_rates_a_recommended_movie_and_the_list_changes_at_once(page, site, screenshots):
    user = model_card(site)["example_users"][-1]  # a user no other test rates for
    signed_in(page, site, user)
    page.goto(f"{site.url}/#/user")
    personal = page.locator("#user-personal li.card")
    expect(personal).to_have_count(10)
    first = personal.first
    title = first.locator(".title").inner_text().split(". ", 1)[1]
    movie_id = first.get_attribute("data-movie-id")
    expect(page.locator("#user-events")).to_contain_text("Rate a recommended movie")

    # WHEN they give it half a star (they saw it and disliked it)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/api/me/events")) as sent:
        first.get_by_role("radio", name="0.5 stars").check(force=True)
    assert sent.value.status == 200
    # the rating names the list it came from (the request's id, kept for attribution)
    (event,) = sent.value.request.post_data_json["events"]
    assert {k: event[k] for k in ("movie_id", "rating")} == {"movie_id": int(movie_id), "rating": 0.5}
    assert re.fullmatch(r"[0-9a-f-]{36}", event["request_id"])

    # THEN the list is asked for again and no longer holds it, and says it used the rating
    expect(page.locator("#user-events")).to_have_text("Updated with 1 rating given since the model was trained.")
    expect(personal).to_have_count(10)
    expect(page.locator(f'#user-personal li.card[data-movie-id="{movie_id}"]')).to_have_count(0)
    assert title not in " ".join(personal.locator(".title").all_inner_texts())
    page.screenshot(path=screenshots / "known-user-rated.png", full_page=True)


def test_signed_out_the_personal_views_ask_to_sign_in_and_call_nothing(page, site):
    calls = []
    page.on("request", lambda r: calls.append(r.url) if "/api/me" in r.url else None)
    for route, view in (("#/user", "#view-user"), ("#/profile", "#view-profile")):
        page.goto(f"{site.url}/{route}")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator(view).get_by_role("link", name=re.compile("^Sign in"))).to_be_visible()
        expect(page.locator(f"{view} li.card")).to_have_count(0)
    expect(page.get_by_role("navigation").get_by_role("link", name="Sign in")).to_be_visible()
    assert calls == []


def test_a_person_signs_up_confirms_signs_out_and_in_and_deletes_their_account(page, site, screenshots):
    email = f"new{uuid.uuid4().hex[:10]}@example.com"
    page.goto(f"{site.url}/#/account")
    # WHEN they create an account THEN the page asks for the e-mailed code (moto's Cognito takes any)
    signup = page.locator("#sign-up-form")
    signup.get_by_label("E-mail address").fill(email)
    signup.get_by_label(re.compile("^Password")).fill(PASSWORD)
    signup.get_by_role("button", name="Create account").click()
    page.get_by_label("Code").fill("123456")
    page.get_by_role("button", name="Confirm").click()
    # THEN they are signed in, on their recommendations (popular: the model does not know them yet)
    expect(page).to_have_url(re.compile(r"#/user$"))
    expect(page.get_by_role("navigation").get_by_role("link", name="Your account")).to_be_visible()
    expect(page.locator("#user-personal li.card")).to_have_count(10)

    # AND a reload keeps them signed in; signing out forgets the session
    page.reload()
    expect(page.locator("#user-personal li.card")).to_have_count(10)
    page.goto(f"{site.url}/#/account")
    expect(page.get_by_text(f"Signed in as {email}.")).to_be_visible()
    page.screenshot(path=screenshots / "account-desktop.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("navigation").get_by_role("link", name="Sign in")).to_be_visible()
    assert page.evaluate(f"localStorage.getItem({json.dumps(SESSION)})") is None

    # WHEN a wrong password is typed THEN it is said in words; the right one signs them in again
    signin = page.locator("#sign-in-form")
    signin.get_by_label("E-mail address").fill(email)
    signin.get_by_label("Password").fill("not the password 1")
    signin.get_by_role("button", name="Sign in").click()
    expect(page.locator("#view-account").get_by_role("alert")).to_have_text(WRONG)
    expected_refusal(page)
    signin.get_by_label("Password").fill(PASSWORD)
    signin.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"#/user$"))

    # WHEN they rate a movie and then delete their account THEN the rating and the account are gone
    expect(page.locator("#user-personal li.card")).to_have_count(10)
    expect(page.locator("#view-user")).to_have_attribute("aria-busy", "false")
    first = page.locator("#user-personal li.card").first
    with page.expect_response(lambda r: r.url.endswith("/api/me/events")) as sent:
        first.get_by_role("radio", name="4 stars", exact=True).click(force=True)
    assert sent.value.status == 200
    sub = sent.value.json()["user_id"]
    page.goto(f"{site.url}/#/account")
    page.get_by_role("button", name="Delete my account and data").click()
    with page.expect_response(lambda r: r.request.method == "DELETE" and r.url.endswith("/api/me")) as gone:
        page.get_by_role("button", name="Yes, delete everything").click()
    assert gone.value.json()["events_deleted"] == 1
    expect(page.get_by_role("status")).to_contain_text("Deleted: 1 ratings")
    expect(page.get_by_role("navigation").get_by_role("link", name="Sign in")).to_be_visible()
    from lambdas.service import events as events_service

    assert events_service.for_user(site.services, sub) == []
    signin.get_by_label("E-mail address").fill(email)
    signin.get_by_label("Password").fill(PASSWORD)
    signin.get_by_role("button", name="Sign in").click()
    expect(page.locator("#view-account").get_by_role("alert")).to_have_text(WRONG)
    expected_refusal(page)


def expected_refusal(page) -> None:
    """Cognito refuses a wrong password with HTTP 400, which the browser logs as a failed load: expected here."""
    failed = [p for p in page.problems if "status of 400" in p]
    assert len(failed) == 1, page.problems
    page.problems.remove(failed[0])


def test_two_people_side_by_side_each_see_only_their_own(browser, site):
    """Two browsers, two people (one linked to a data-set user, one new who rated a movie): each sees their own
    list and profile, and their requests carry their own token."""
    card = model_card(site)
    contexts, pages = [], []
    for user in (card["example_users"][1], None):
        context = browser.new_context()
        contexts.append(context)
        opened = context.new_page()
        opened.who = signed_in(opened, site, user)
        pages.append(opened)
    try:
        anna, ben = pages
        # Ben, new, rates the first movie of his (popular) list with 5 stars
        ben.goto(f"{site.url}/#/user")
        expect(ben.locator("#user-personal li.card")).to_have_count(10)
        expect(ben.locator("#view-user")).to_have_attribute("aria-busy", "false")
        first = ben.locator("#user-personal li.card").first
        rated = first.get_attribute("data-movie-id")
        with ben.expect_response(lambda r: r.url.endswith("/api/me/events")) as sent:
            first.get_by_role("radio", name="5 stars", exact=True).click(force=True)
        assert sent.value.json()["user_id"] == ben.who["sub"]
        expect(ben.locator("#user-events")).to_have_text("Updated with 1 rating given since the model was trained.")
        # Anna, user of the data set, sees her own list and profile, untouched by Ben's rating
        anna.goto(f"{site.url}/#/user")
        expect(anna.get_by_role("heading", name="Recommended for you")).to_be_visible()
        expect(anna.locator("#user-events")).to_have_text(re.compile("^Rate a recommended movie you have seen"))
        anna.goto(f"{site.url}/#/profile")
        expect(anna.locator("#profile-summary")).to_contain_text("You rated")
        ben.goto(f"{site.url}/#/profile")
        expect(ben.locator("#view-profile").get_by_role("alert")).to_contain_text("The model does not know you yet")
        ben_ids = ben.locator("#user-personal li.card").evaluate_all("cs => cs.map(c => c.dataset.movieId)")
        assert rated not in ben_ids
    finally:
        for context in contexts:
            context.close()
