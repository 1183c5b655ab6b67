// The page: hash routes (#/user, #/new, #/similar/1, #/profile, #/account, #/about), the signed-in person's
// recommendations and profile and the about view; the account, new-visitor and similar-movies views live in their
// own modules.

import { initAccount, showAccount } from "./account.js";
import * as auth from "./auth.js";
import { getJson, getSiteConfig, myProfile, postMyEvents, recommendMine } from "./api.js";
import { announce, el, fillList, paintStars, run, showError, starControl } from "./render.js";
import { initSimilar, showSimilar } from "./similar.js";
import { initVisitor, showVisitor } from "./visitor.js";

const VIEWS = ["user", "new", "similar", "profile", "account", "about"];
const view = (name) => document.getElementById(`view-${name}`);
let model = null; // GET /model, loaded once

async function loadModel() {
  if (!model) model = await getJson("model");
  return model;
}

// ------------------------------------------------------------------ shared bits

function genreChecks(container, genres, name, onChange) {
  container.replaceChildren(
    ...genres.map((g) => {
      const id = `${name}-${g.replace(/[^A-Za-z0-9]/g, "_")}`;
      return el(
        "span",
        { class: "check" },
        el("input", { type: "checkbox", id, name, value: g, onchange: onChange }),
        el("label", { for: id }, g),
      );
    }),
  );
}

const checked = (container) => [...container.querySelectorAll("input:checked")].map((i) => i.value);

// ------------------------------------------------------------------ the signed-in person's recommendations

function userFilters() {
  const v = view("user");
  return {
    genres: checked(v.querySelector('[data-genres="include"]')),
    exclude_genres: checked(v.querySelector('[data-genres="exclude"]')),
  };
}

async function showUser() {
  const v = view("user");
  if (!auth.account()) {
    v.querySelector("#user-results").hidden = true;
    return;
  }
  const { genres, exclude_genres } = userFilters();
  const body = { k: 10, include_history: true, include_popular: true };
  if (genres.length) body.genres = genres;
  if (exclude_genres.length) body.exclude_genres = exclude_genres;
  const result = await run(v, "Finding recommendations for you…", (wanted) => recommendMine(body, wanted));
  if (!result) return;
  announce(`${result.items.length} recommendations for you.`);
  const personal = result.strategy !== "popular";
  v.querySelector("#h-personal").textContent = personal
    ? "Recommended for you"
    : "The model does not know your taste yet: the most popular movies instead";
  v.querySelector("#user-match-note").hidden = !personal; // the popular fallback has no match figure
  const used = result.events_used || 0;
  v.querySelector("#user-events").textContent = used
    ? `Updated with ${used} rating${used === 1 ? "" : "s"} given since the model was trained.`
    : "Rate a recommended movie you have seen: the list updates at once.";
  fillList(v.querySelector("#user-personal"), result.items, {
    ranked: true,
    empty: "No movie passes these filters.",
    extra: (m) =>
      el("div", { class: "rate-row" }, starControl(m, null, (value, group) => rateFor(m, value, group, result.request_id), "known")),
  });
  const popular = result.popular || [];
  fillList(v.querySelector("#user-popular"), popular, { ranked: true, empty: "No movie passes these filters." });
  const ids = new Set(result.items.map((m) => String(m.movie_id)));
  const both = popular.filter((m) => ids.has(String(m.movie_id))).length;
  v.querySelector("#user-overlap").textContent = `${both} of ${popular.length} also in the personal list.`;
  fillList(v.querySelector("#user-history"), result.history || [], { empty: "No ratings in the training data." });
  v.querySelector("#user-results").hidden = false;
}

// A rating of a recommended movie: stored as an event naming the list it came from (the request's id, kept for
// attribution), then the list is asked for again (it folds the rating in).
async function rateFor(movie, value, group, requestId) {
  const v = view("user");
  paintStars(group, value);
  const stored = await run(
    v,
    `Saving your rating of ${movie.title}…`,
    () => postMyEvents([{ movie_id: movie.movie_id, rating: value, ...(requestId ? { request_id: requestId } : {}) }]),
    "rate",
  );
  if (!stored) {
    paintStars(group, 0); // not stored: the stars say so
    return;
  }
  // Reload the list only if the page still shows it (the person may have moved on meanwhile).
  if (location.hash.startsWith("#/user")) showUser();
}

function initUser() {
  const v = view("user");
  let timer = null;
  const refilter = () => {
    clearTimeout(timer);
    if (!v.querySelector("#user-results").hidden) timer = setTimeout(() => showUser(), 250);
  };
  genreChecks(v.querySelector('[data-genres="include"]'), model.genres, "include", refilter);
  genreChecks(v.querySelector('[data-genres="exclude"]'), model.genres, "exclude", refilter);
}

// ------------------------------------------------------------------ the signed-in person's profile

async function showProfile() {
  const v = view("profile");
  if (!auth.account()) {
    v.querySelector("#profile-results").hidden = true;
    return;
  }
  const result = await run(v, "Reading your profile…", (wanted) => myProfile(wanted));
  if (!result) return;
  announce(`Your profile: ${result.n_ratings} ratings.`);
  v.querySelector("#profile-summary").textContent =
    `You rated ${result.n_ratings} movies, ${result.mean_rating.toFixed(2)} on average.`;
  const rows = result.genres.map((g) =>
    el(
      "tr",
      {},
      el("th", { scope: "row" }, g.genre),
      el(
        "td",
        { class: "bar-cell" },
        bar(g.share),
        el("span", { class: "bar-label" }, `${Math.round(g.share * 100)}% (${g.count})`),
      ),
      el("td", {}, g.mean_rating.toFixed(2)),
      el("td", {}, String(g.liked)),
    ),
  );
  v.querySelector("#profile-genres").replaceChildren(...rows);
  fillList(v.querySelector("#profile-history"), result.history, { empty: "No ratings." });
  v.querySelector("#profile-results").hidden = false;
}

// A bar as wide as the share (set through the CSSOM: the page's CSP allows no inline style attributes).
function bar(share) {
  const node = el("span", { class: "bar", "aria-hidden": "true" });
  node.style.setProperty("--share", `${(share * 100).toFixed(1)}%`);
  return node;
}


// ------------------------------------------------------------------ about

function showAbout() {
  const v = view("about");
  const m = model;
  const ds = m.dataset || {};
  const rows = [
    ["Model version", m.model_version],
    ["Model", m.model_kind],
    ["Trained on", ds.name ? `${ds.name} (${(ds.n_ratings || 0).toLocaleString("en")} ratings)` : null],
    ["Users and movies", m.n_users ? `${m.n_users.toLocaleString("en")} users, ${m.n_movies.toLocaleString("en")} movies` : null],
    ["Held-out split", m.split],
    ["Similar movies by", m.similarity],
    ["Trained", m.trained ? m.trained.slice(0, 10) : null],
    ["Exported", m.created ? m.created.slice(0, 10) : null],
  ].filter(([, value]) => value);
  v.querySelector("#about-card").replaceChildren(...rows.flatMap(([k, value]) => [el("dt", {}, k), el("dd", {}, value)]));
  const metrics = Object.entries(m.metrics || {});
  v.querySelector("#about-metrics").replaceChildren(
    ...(metrics.length
      ? metrics.map(([k, value]) => el("tr", {}, el("th", { scope: "row" }, k.toUpperCase()), el("td", {}, value.toFixed(4))))
      : [el("tr", {}, el("td", { colspan: "2" }, "No held-out metrics were recorded."))]),
  );
}

// ------------------------------------------------------------------ routing

// The argument of the current route (#/similar/1 -> "1"); undefined when there is none or it is malformed.
function routeArgument() {
  const rest = location.hash.replace(/^#\//, "").split("/").slice(1);
  if (!rest.length || !rest.join("/")) return undefined;
  try {
    return decodeURIComponent(rest.join("/"));
  } catch {
    return undefined;
  }
}

let shown = null;

function route() {
  if (location.hash && !location.hash.startsWith("#/")) return; // an in-page link, such as "Skip to content"
  const [, name = "user"] = location.hash.replace(/^#/, "").split("/");
  const current = VIEWS.includes(name) ? name : "user";
  const arg = routeArgument();
  for (const n of VIEWS) view(n).hidden = n !== current;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${view(current).querySelector("h1").textContent} · Movie recommender`;
  if (shown !== null && shown !== current) view(current).querySelector("h1").focus();
  shown = current;
  if (current === "user") showUser();
  else if (current === "profile") showProfile();
  else if (current === "similar") showSimilar(arg);
  else if (current === "new") showVisitor();
  else if (current === "account") showAccount();
  else showAbout();
}

// Who is signed in shows in the page (what it offers, the header's link); a change re-shows the current view.
function session(person) {
  document.body.dataset.session = person ? "in" : "out";
  document.getElementById("nav-account").textContent = person ? "Your account" : "Sign in";
  if (shown !== null) route();
}

async function start() {
  let site = { auth: null };
  try {
    [, site] = await Promise.all([loadModel(), getSiteConfig()]);
    session(await auth.init(site.auth).catch(() => null));
  } catch (error) {
    // Without the model card there are no genres or example users: say why, and try again on the next navigation.
    const name = VIEWS.find((n) => location.hash.startsWith(`#/${n}`)) || "user";
    for (const n of VIEWS) view(n).hidden = n !== name;
    showError(view(name), error);
    document.body.dataset.ready = "error";
    window.addEventListener("hashchange", () => location.reload(), { once: true });
    return;
  }
  initUser();
  initAccount(view("account"), site.auth !== null);
  auth.onChange(session);
  initSimilar(view("similar"));
  initVisitor(view("new"), model, genreChecks);
  window.addEventListener("hashchange", route);
  route();
  document.body.dataset.ready = "true";
}

start();
