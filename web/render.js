// Building blocks of the page: elements from data (text only, never HTML), movie cards, busy and error states.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const fmt = (x, digits = 1) => Number(x).toFixed(digits);

export function movieMeta(movie) {
  const parts = [];
  if (movie.year) parts.push(String(movie.year));
  if (movie.genres && movie.genres.length) parts.push(movie.genres.join(", "));
  return parts.join(" · ");
}

// What a personalised card shows for its place: the match, the share of the catalogue that ranks below the movie
// for this user. The API computes it from the ranking score, so it never increases down a list (the predicted
// rating does not follow the order, and showed 3.6, 3.4, 3.7 down one). Cut, not rounded, to one decimal, so that
// 99.96 does not read as 100.0; cutting keeps the order too (the 1e-6: 98.7 * 10 is 986.99999... in floating
// point).
const matchText = (match) => `${(Math.floor(match * 10 + 1e-6) / 10).toFixed(1)}% match`;

const starLabel = (v) => (v === 1 ? "1 star" : `${v} stars`);
// A rating as a person says it: 4.5, 5 (never 5.0).
const ratingWords = (value) => String(Number(value));
const people = (n) => (n === 1 ? "1 person" : `${Number(n).toLocaleString("en")} people`);

// "A", "A and B", "A, B and C".
function listWords(parts) {
  return parts.length < 2 ? parts.join("") : `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}`;
}

// Why a movie is on its list, in words, from the API's ``reasons``; null when it sent none (``explain`` off).
// ``anchor`` is the movie a similar-movies list is about.
export function reasonText(movie, anchor = null) {
  const reasons = movie.reasons || [];
  // Only the ratings that push the movie up are reasons for it; the API lists at most 3, the one that holds the
  // movie in its place most first.
  const rated = reasons.filter((r) => r.kind === "rated" && r.share > 0).slice(0, 3);
  if (rated.length) {
    const parts = rated.map(
      (r, i) => `${r.title || `movie ${r.movie_id}`} ${i ? ratingWords(r.rating) : starLabel(Number(r.rating))}`,
    );
    return `Because you rated ${listWords(parts)}`;
  }
  // Rated reasons, none of them positive: no one rating of the user's lifts it, the model's view of the movie does.
  if (reasons.some((r) => r.kind === "rated")) {
    return "From the model's view of this movie more than from any one of your ratings";
  }
  const first = reasons[0];
  if (!first) return null;
  const about = anchor ? anchor.title || `movie ${anchor.movie_id}` : "the movie asked about";
  if (first.kind === "popular") {
    return `Popular: ${Number(first.users).toLocaleString("en")} rating${first.users === 1 ? "" : "s"}`;
  }
  // The neighbour table may count every rating, not only 4+: a neighbour that no one liked together counts 0.
  if (first.kind === "liked_together") {
    if (!first.users) return `Rated by the same people as ${about}`;
    return `${people(first.users)} who liked ${about} also liked this`;
  }
  if (first.kind === "factors") return `Close to ${about} in the tastes the model learned`;
  return null;
}

// One movie as a card: title, year and genres, the figure that goes with its list (match, the user's own rating,
// number of ratings) and why it is there.
export function movieCard(movie, { extra = null, rank = null, anchor = null } = {}) {
  const lines = [];
  if (movie.match !== undefined && movie.match !== null) {
    lines.push(el("p", { class: "score" }, matchText(movie.match)));
  }
  if (movie.rating !== undefined && movie.rating !== null) {
    lines.push(el("p", { class: "score" }, `Rated ${fmt(movie.rating)} / 5`));
  }
  if (movie.n_ratings !== undefined && movie.n_ratings !== null) {
    lines.push(el("p", { class: "note" }, `${movie.n_ratings} ratings, mean ${fmt(movie.mean_rating)}`));
  }
  const why = reasonText(movie, anchor);
  if (why) lines.push(el("p", { class: "why" }, why));
  return el(
    "li",
    { class: "card", "data-movie-id": movie.movie_id },
    el("h3", { class: "title" }, rank ? el("span", { class: "rank" }, `${rank}. `) : null, movie.title || `Movie ${movie.movie_id}`),
    el("p", { class: "meta" }, movieMeta(movie)),
    lines,
    extra,
  );
}

const STARS = [0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5];

// A star rating control: ten radio buttons (half stars), shown as five stars split in halves. ``onRate(value,
// group)`` runs when one is chosen; ``prefix`` keeps the radio names of different views apart.
export function starControl(movie, current, onRate, prefix) {
  const name = `${prefix}-${String(movie.movie_id).replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const group = el("fieldset", { class: "stars" }, el("legend", { class: "visually-hidden" }, `Your rating of ${movie.title}`));
  for (const v of STARS) {
    const id = `${name}-${String(v).replace(".", "_")}`;
    const radio = el("input", { type: "radio", name, id, value: String(v), class: "visually-hidden" });
    if (current === v) radio.checked = true;
    radio.addEventListener("change", () => onRate(v, group));
    group.append(
      radio,
      el(
        "label",
        { for: id, class: `half ${Number.isInteger(v) ? "right" : "left"}${current !== null && v <= current ? " on" : ""}` },
        el("span", { "aria-hidden": "true" }, "★"),
        el("span", { class: "visually-hidden" }, starLabel(v)),
      ),
    );
  }
  return group;
}

export function paintStars(group, value) {
  group.querySelectorAll("label").forEach((label) => {
    const v = Number(label.previousElementSibling.value);
    label.classList.toggle("on", v <= value);
  });
}

export function fillList(list, movies, options = {}) {
  const card = (m, i) =>
    movieCard(m, {
      rank: options.ranked ? i + 1 : null,
      anchor: options.anchor,
      extra: options.extra ? options.extra(m) : null,
    });
  list.replaceChildren(...movies.map(card));
  if (!movies.length) list.replaceChildren(el("li", { class: "empty" }, options.empty || "Nothing to show."));
}

// The status line (announced politely) and a view's own busy state.
const status = () => document.getElementById("status");

function setBusy(view, busy, text = "Working…") {
  view.setAttribute("aria-busy", busy ? "true" : "false");
  view.classList.toggle("busy", busy);
  status().textContent = busy ? text : "";
  status().classList.toggle("pending", busy);
}

// A short summary for screen readers once a step has finished ("10 recommendations for user 19").
export function announce(text) {
  status().classList.remove("pending");
  status().textContent = text;
}

export function showError(view, error) {
  const box = view.querySelector(".error");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = error.message || String(error);
  box.hidden = false;
}

// Run one asynchronous step of a view: busy while it runs, errors shown in words, stale answers dropped (a newer
// step on the same channel of the same view wins; different channels, e.g. loading and scoring, do not cancel).
// ``work`` gets a function telling whether its answer is still wanted (a superseded request stops polling).
const generations = new Map();
const busy = new Map(); // view id -> steps running

export async function run(view, text, work, channel = "main") {
  const key = `${view.id}:${channel}`;
  const generation = (generations.get(key) || 0) + 1;
  generations.set(key, generation);
  const wanted = () => generations.get(key) === generation;
  showError(view, null);
  busy.set(view.id, (busy.get(view.id) || 0) + 1);
  setBusy(view, true, text);
  try {
    const result = await work(wanted);
    return wanted() ? result : undefined;
  } catch (error) {
    if (wanted() && error.code !== "superseded") showError(view, error);
    return undefined;
  } finally {
    const left = busy.get(view.id) - 1;
    busy.set(view.id, left);
    if (!left) setBusy(view, false);
  }
}

// Drop every running step of a view (its answers are no longer wanted).
export function cancel(view) {
  for (const key of generations.keys()) {
    if (key.startsWith(`${view.id}:`)) generations.set(key, generations.get(key) + 1);
  }
}
