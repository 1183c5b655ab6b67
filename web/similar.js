// Similar movies: a type-ahead over the whole catalogue (GET /movies?q=), then the similar-movies request.
// The combobox follows the WAI-ARIA pattern: arrow keys move through the options, Enter picks, Escape closes.

import { getJson, recommend } from "./api.js";
import { announce, el, fillList, movieMeta, run, showError } from "./render.js";

const SUGGESTIONS = 8;
const DEBOUNCE_MS = 150;
let root = null;
let options = [];
let active = -1;
let typed = 0; // the latest keystroke's number: older answers are dropped

function input() {
  return root.querySelector("#similar-q");
}

function listbox() {
  return root.querySelector("#similar-options");
}

function close() {
  listbox().hidden = true;
  input().setAttribute("aria-expanded", "false");
  input().removeAttribute("aria-activedescendant");
  active = -1;
}

function highlight(index) {
  active = index;
  listbox()
    .querySelectorAll('[role="option"]')
    .forEach((node, i) => node.setAttribute("aria-selected", i === index ? "true" : "false"));
  if (index >= 0) {
    input().setAttribute("aria-activedescendant", `similar-option-${index}`);
    document.getElementById(`similar-option-${index}`).scrollIntoView({ block: "nearest" });
  } else input().removeAttribute("aria-activedescendant");
}

function pick(movie) {
  close();
  input().value = movie.title;
  const target = `#/similar/${encodeURIComponent(movie.movie_id)}`;
  if (location.hash === target) showSimilar(String(movie.movie_id));
  else location.hash = target;
}

async function suggest() {
  const q = input().value.trim();
  const mine = ++typed;
  if (q.length < 2) {
    close();
    return;
  }
  let page;
  try {
    page = await getJson("movies", { q, limit: SUGGESTIONS });
  } catch (error) {
    if (mine === typed) showError(root, error);
    return;
  }
  if (mine !== typed || document.activeElement !== input()) return; // typed on, or left the field meanwhile
  showError(root, null);
  options = page.movies;
  const box = listbox();
  box.replaceChildren(
    ...(options.length
      ? options.map((m, i) =>
          el(
            "li",
            { role: "option", id: `similar-option-${i}`, "aria-selected": "false", onmousedown: (e) => e.preventDefault(), onclick: () => pick(m) },
            el("span", { class: "option-title" }, m.title),
            el("span", { class: "option-meta" }, movieMeta(m)),
          ),
        )
      : [el("li", { class: "no-match", role: "option", "aria-disabled": "true", "aria-selected": "false" }, `No title matches “${q}”.`)]),
  );
  box.hidden = false;
  input().setAttribute("aria-expanded", "true");
  highlight(-1);
}

export function initSimilar(view) {
  root = view;
  let timer = null;
  const field = input();
  field.addEventListener("input", () => {
    clearTimeout(timer);
    options = []; // the shown list is for the old text: arrows and Enter wait for the new one
    timer = setTimeout(suggest, DEBOUNCE_MS);
  });
  field.addEventListener("keydown", (event) => {
    const open = !listbox().hidden && options.length;
    if (event.key === "ArrowDown" && open) {
      event.preventDefault();
      highlight((active + 1) % options.length);
    } else if (event.key === "ArrowUp" && open) {
      event.preventDefault();
      highlight(active <= 0 ? options.length - 1 : active - 1);
    } else if (event.key === "Enter") {
      event.preventDefault();
      if (open) pick(options[Math.max(active, 0)]);
    } else if (event.key === "Escape") {
      close();
    }
  });
  field.addEventListener("blur", () => {
    typed += 1; // an answer still on its way must not reopen the list
    setTimeout(close, 100);
  });
  view.querySelector("#similar-form").addEventListener("submit", (event) => event.preventDefault());
}

export async function showSimilar(movieId) {
  if (movieId === undefined) return;
  const before = input().value;
  const result = await run(root, "Finding similar movies…", (wanted) =>
    recommend({ similar_to: String(movieId), k: 10 }, wanted),
  );
  if (!result) return;
  const heading = root.querySelector("#similar-heading");
  heading.textContent = `Movies similar to ${result.movie.title}`;
  if (input().value === before && document.activeElement !== input()) input().value = result.movie.title;
  fillList(root.querySelector("#similar-list"), result.items, {
    ranked: true,
    anchor: result.movie, // each card says how it is linked to this movie
    empty: "No similar movies found.",
    extra: (m) =>
      el(
        "p",
        {},
        el(
          "a",
          { href: `#/similar/${encodeURIComponent(m.movie_id)}` },
          "More like this",
          el("span", { class: "visually-hidden" }, `: ${m.title}`),
        ),
      ),
  });
  root.querySelector("#similar-results").hidden = false;
  announce(`${result.items.length} movies similar to ${result.movie.title}.`);
  if (document.activeElement === document.body || !document.activeElement.isConnected) heading.focus();
}
