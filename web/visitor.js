// "Tell us what you like": pick genres, rate popular movies of those genres with (half) stars, get recommendations
// from the ratings (a cold-start request) once there are a few; the ratings stay in localStorage.

import { getJson, recommend } from "./api.js";
import { announce, cancel, el, fillList, movieMeta, paintStars, run, showError, starControl } from "./render.js";

const KEY = "movie-recommender.visitor.v1";
const MIN_RATINGS = 3;
const PAGE = 12;
const REFRESH_MS = 400;

let root = null;
let state = { genres: [], ratings: {}, order: [], skipped: [] };
let offset = 0; // next position in the genres' popularity list
let total = Infinity;
let shown = new Set();
let timer = null;

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) || "null");
    if (saved && typeof saved === "object" && saved.ratings) {
      state = { genres: [], order: [], skipped: [], ...saved };
    }
  } catch {
    state = { genres: [], ratings: {}, order: [], skipped: [] };
  }
}

function save() {
  try {
    localStorage.setItem(KEY, JSON.stringify(state));
  } catch {
    // storage full or disabled: the session still works, it just will not survive a reload
  }
}

const $ = (selector) => root.querySelector(selector);
const count = () => Object.keys(state.ratings).length;

function stars(movie) {
  const current = state.ratings[movie.movie_id] ? state.ratings[movie.movie_id].rating : null;
  return starControl(movie, current, (value, group) => rate(movie, value, group), "rate");
}

function card(movie) {
  const rated = state.ratings[movie.movie_id];
  const yours = el("p", { class: "yours" }, rated ? `Your rating: ${rated.rating}` : "");
  const skip = el(
    "button",
    { type: "button", class: "secondary small", "aria-label": `Haven't seen ${movie.title}`, onclick: () => skipMovie(movie) },
    "Haven't seen",
  );
  return el(
    "li",
    { class: "card rate", "data-movie-id": movie.movie_id },
    el("h3", { class: "title" }, movie.title),
    el("p", { class: "meta" }, movieMeta(movie)),
    el("div", { class: "rate-row" }, stars(movie), rated ? null : skip),
    yours,
  );
}

function rate(movie, value, group) {
  state.ratings[movie.movie_id] = {
    rating: value,
    movie: { movie_id: movie.movie_id, title: movie.title, year: movie.year, genres: movie.genres },
  };
  if (!state.order.includes(movie.movie_id)) state.order.push(movie.movie_id);
  save();
  paintStars(group, value);
  const li = group.closest("li");
  li.querySelector(".yours").textContent = `Your rating: ${value}`;
  const skip = li.querySelector("button");
  if (skip) skip.remove();
  updateCount();
  clearTimeout(timer);
  timer = setTimeout(refresh, REFRESH_MS);
}

function skipMovie(movie) {
  state.skipped.push(movie.movie_id);
  save();
  const li = $(`#new-to-rate li[data-movie-id="${CSS.escape(String(movie.movie_id))}"]`);
  const next = li && (li.nextElementSibling || li.previousElementSibling);
  if (li) li.remove();
  more(1).then(() => {
    const target = next && next.isConnected ? next : $("#new-to-rate li:last-child");
    const focusable = target && target.querySelector("input, button");
    if (focusable) focusable.focus();
  });
}

function updateCount() {
  const n = count();
  $("#new-count").textContent = n ? `You rated ${n} movie${n === 1 ? "" : "s"}.` : "No ratings yet.";
  if (n < MIN_RATINGS) {
    $("#new-recs-section").hidden = false;
    $("#new-recs-note").textContent = `Rate ${MIN_RATINGS - n} more movie${MIN_RATINGS - n === 1 ? "" : "s"} to see recommendations.`;
    $("#new-recs").replaceChildren();
    $("#new-match-note").hidden = true;
  }
}

async function more(wanted) {
  const list = $("#new-to-rate");
  const skipped = new Set(state.skipped.map(String));
  let added = 0;
  while (added < wanted && offset < total) {
    const page = await run(root, "Finding movies to rate…", () =>
      getJson("movies", { genres: state.genres, limit: PAGE, offset }),
      "movies",
    );
    if (!page) return;
    total = page.total;
    offset += page.movies.length;
    if (!page.movies.length) break;
    for (const movie of page.movies) {
      const id = String(movie.movie_id);
      if (shown.has(id) || skipped.has(id) || state.ratings[movie.movie_id]) continue;
      shown.add(id);
      list.append(card(movie));
      added += 1;
      if (added >= wanted) break;
    }
  }
  $("#new-more").disabled = offset >= total;
}

async function refresh() {
  const n = count();
  if (n < MIN_RATINGS) return;
  const ratings = Object.fromEntries(Object.entries(state.ratings).map(([id, r]) => [id, r.rating]));
  const result = await run(
    root,
    "Updating your recommendations…",
    (wanted) => recommend({ ratings, k: 10 }, wanted),
    "recs",
  );
  if (!result) return;
  announce(`${result.items.length} recommendations from your ${n} ratings.`);
  $("#new-recs-section").hidden = false;
  $("#new-recs-note").textContent = `From your ${n} ratings.`;
  $("#new-match-note").hidden = result.strategy === "popular"; // no known movie rated: popular, no match figure
  fillList($("#new-recs"), result.items, { ranked: true, empty: "No recommendations yet." });
}

async function begin() {
  offset = 0;
  total = Infinity;
  shown = new Set();
  const list = $("#new-to-rate");
  list.replaceChildren();
  // what was rated before (this visit or an earlier one) stays on the list, with its stars
  for (const id of state.order) {
    const r = state.ratings[id];
    if (r) {
      shown.add(String(id));
      list.append(card(r.movie));
    }
  }
  $("#new-rate-section").hidden = false;
  updateCount();
  await more(PAGE);
  await refresh();
}

function reset() {
  clearTimeout(timer);
  cancel(root); // answers still on their way are for the old ratings
  state = { genres: [], ratings: {}, order: [], skipped: [] };
  try {
    localStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
  root.querySelectorAll('[data-genres="visitor"] input').forEach((box) => {
    box.checked = false;
  });
  $("#new-to-rate").replaceChildren();
  $("#new-recs").replaceChildren();
  $("#new-rate-section").hidden = true;
  $("#new-recs-section").hidden = true;
  showError(root, null);
  root.querySelector('[data-genres="visitor"] input')?.focus();
}

export function initVisitor(view, model, genreChecks) {
  root = view;
  load();
  genreChecks($('[data-genres="visitor"]'), model.genres, "visitor", () => {});
  for (const box of root.querySelectorAll('[data-genres="visitor"] input')) box.checked = state.genres.includes(box.value);
  $("#new-genres-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const genres = [...root.querySelectorAll('[data-genres="visitor"] input:checked')].map((b) => b.value);
    if (!genres.length) {
      showError(root, new Error("Pick at least one kind of movie first."));
      return;
    }
    state.genres = genres;
    save();
    begin();
  });
  $("#new-more").addEventListener("click", () => more(PAGE));
  $("#new-reset").addEventListener("click", reset);
}

let started = false;

export function showVisitor() {
  if (started || !state.genres.length) return;
  started = true;
  begin();
}
